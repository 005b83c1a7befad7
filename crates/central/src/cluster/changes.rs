//! The dashboards' changes across nodes: each change is published on `{prefix}.changes` by a
//! task (the caller never waits), and every node feeds the other nodes' changes into its own
//! live pages.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::wire::Change;
use super::ClusterError;
use crate::Central;

/// Changes waiting to be published; more are dropped (a live page reloads at the next one).
const QUEUED: usize = 4096;

/// The changes made within this time travel once each: a busy pile changes with every message
/// it sends, and a live page refreshes at most once a second.
const GATHER: Duration = Duration::from_millis(250);

/// The sending side: a queue to the publishing task.
pub(super) struct Outbox {
    queue: mpsc::Sender<String>,
}

impl Outbox {
    /// Starts the task that publishes the changes queued on `subject`.
    pub(super) fn start(nats: async_nats::Client, node: String, subject: String) -> Outbox {
        let (queue, mut queued) = mpsc::channel::<String>(QUEUED);
        tokio::spawn(async move {
            while let Some(first) = queued.recv().await {
                let mut gathered = BTreeSet::from([first]);
                let window = tokio::time::sleep(GATHER);
                tokio::pin!(window);
                loop {
                    tokio::select! {
                        () = &mut window => break,
                        more = queued.recv() => match more {
                            Some(what) => {
                                gathered.insert(what);
                            }
                            None => break,
                        },
                    }
                }
                for what in gathered {
                    let change = Change {
                        node: node.clone(),
                        what,
                    };
                    let body = serde_json::to_vec(&change).expect("JSON");
                    if let Err(e) = nats.publish(subject.clone(), body.into()).await {
                        tracing::debug!("a change not published: {e}");
                    }
                }
            }
        });
        Outbox { queue }
    }

    /// Queues a change for the other nodes.
    pub(super) fn share(&self, what: &str) {
        if self.queue.try_send(what.to_owned()).is_err() {
            tracing::debug!("changes queue full: {what} not shared");
        }
    }
}

/// Subscribes to the other nodes' changes and shows them on this node's live pages.
pub async fn follow(central: &Arc<Central>) -> Result<(), ClusterError> {
    let Some(cluster) = central.cluster() else {
        return Ok(());
    };
    let mut changes = cluster
        .nats()
        .subscribe(cluster.subject("changes"))
        .await
        .map_err(|e| ClusterError::Nats(e.to_string()))?;
    cluster.settle().await?;
    let central = central.clone();
    tokio::spawn(async move {
        while let Some(message) = changes.next().await {
            match serde_json::from_slice::<Change>(&message.payload) {
                Ok(change) if change.node != central.node() => central.show_change(change.what),
                Ok(_) => {}
                Err(e) => tracing::debug!("a change does not decode: {e}"),
            }
        }
    });
    Ok(())
}
