//! Stopping a node without a reconnect storm: it takes no new connection, closes its piles'
//! connections spread over a time, and ends once everything they sent is committed.

use std::time::Duration;

use tokio::time::Instant;

use super::Running;
use crate::store::StoreError;

/// How long the connections' tasks may take, once every connection is closed, to hand over
/// their last writes; and how long the writer then may take to commit what is queued.
pub const DRAIN_TAIL: Duration = Duration::from_secs(10);

/// The longest drain: a longer one is a day.
pub const MAX_DRAIN: Duration = Duration::from_secs(86_400);

/// Why a drain did not end with everything committed.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error(
        "the connections' last writes were not handed over {DRAIN_TAIL:?} after they were closed"
    )]
    ConnectionsLinger,
    #[error("the writer had not committed what was queued within {DRAIN_TAIL:?}")]
    CommitTimeout,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Running {
    /// Drains the node: `/health` answers `draining` and the listener closes at once; the
    /// piles' connections are closed one by one, spread evenly over `over` (all at once when
    /// it is zero; at most [`MAX_DRAIN`]); then, once every connection's task has handed over
    /// its last writes, the group-commit writer commits everything queued. Returns when it
    /// has.
    pub async fn drain(&self, over: Duration) -> Result<(), DrainError> {
        let over = over.min(MAX_DRAIN);
        let central = &self.central;
        central.health().start_draining();
        let _ = self.stop_accepting.send(true);
        // The accept loop drops its receiver once the listener is closed.
        self.stop_accepting.closed().await;
        let piles = central.sessions().identities();
        tracing::info!("draining: {} connections closed over {over:?}", piles.len());
        let started = Instant::now();
        for (i, pile) in piles.iter().enumerate() {
            let at = started + over.mul_f64(i as f64 / piles.len() as f64);
            tokio::time::sleep_until(at).await;
            central.sessions().drop_link(pile);
        }
        // A connection whose handshake passed just before the drain began, if any.
        for pile in central.sessions().identities() {
            central.sessions().drop_link(&pile);
        }
        let sessions = central.sessions();
        if tokio::time::timeout(DRAIN_TAIL, sessions.until_no_task())
            .await
            .is_err()
        {
            return Err(DrainError::ConnectionsLinger);
        }
        match tokio::time::timeout(DRAIN_TAIL, central.writer().flush()).await {
            Ok(flushed) => flushed?,
            Err(_) => return Err(DrainError::CommitTimeout),
        }
        // The other nodes need not wait for the TTL: the leases pass at once (campaigns, the
        // periodic jobs), and the node leaves the list.
        let released = central.repo().release_leases(central.node()).await?;
        central.repo().leave(central.node()).await?;
        tracing::info!("drained: {released} leases given up, the node has left");
        Ok(())
    }
}
