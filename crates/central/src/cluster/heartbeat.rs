//! Every node (alone too) writes its row in `nodes` at its start and every node_ttl/3, at the
//! database's clock: the others see it alive. A node that finds its row gone (it was reaped as silent, e.g. while
//! the database was out of reach) writes the presence of its live connections again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{At, StoreError, WriteOp};
use crate::Central;

/// The time between two heartbeats: a third of the node's time to live, at least 100 ms.
pub fn every(node_ttl: Duration) -> Duration {
    (node_ttl / 3).max(Duration::from_millis(100))
}

/// Writes the node's row now, then every node_ttl/3 in a task.
pub async fn start(central: &Arc<Central>, address: SocketAddr) -> Result<(), StoreError> {
    let address = address.to_string();
    central
        .repo()
        .heartbeat(central.node(), &address, At::Database)
        .await?;
    let central = central.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every(central.options().node_ttl));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            // A node that stops is no longer heard from (it leaves the list as it exits).
            if central.health().is_draining() {
                return;
            }
            match central
                .repo()
                .heartbeat(central.node(), &address, At::Database)
                .await
            {
                Ok(true) => {}
                // In a task of its own, so that the heartbeats go on meanwhile.
                Ok(false) => {
                    tokio::spawn(present_again(central.clone()));
                }
                Err(e) => tracing::warn!("heartbeat not written: {e}"),
            }
        }
    });
    Ok(())
}

/// The node was reaped while it lived: its piles show online again.
async fn present_again(central: Arc<Central>) {
    let live = central.sessions().connections();
    tracing::warn!(
        piles = live.len(),
        "this node was taken for gone: its piles' presence is written again"
    );
    // All at once: the group commit puts them in a few transactions.
    let writes = live.into_iter().map(|(pile, connection)| {
        let central = central.clone();
        async move {
            let op = WriteOp::Connected {
                pile: pile.clone(),
                node: central.node().to_owned(),
                connection: connection as i64,
            };
            if let Err(e) = central.writer().write(op).await {
                tracing::warn!(pile, "presence not written again: {e}");
            }
        }
    });
    futures_util::future::join_all(writes).await;
    central.changed("*".into());
}
