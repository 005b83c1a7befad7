//! What the nodes of one central system share in its store: the live nodes (each heard from
//! every few seconds), the presence of piles on them, the leases of work that must run on one
//! node at a time, and the settings every node reads. Times compared across nodes (a node's
//! silence, a lease's expiry) are the database's clock's, never a node's own.

use std::time::Duration;

use async_trait::async_trait;

use super::{Millis, StoreError};

/// The time at which the cluster's rows are written and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The database's clock: one clock for the decisions of every node.
    Database,
    /// A given time, milliseconds since the Unix epoch (a test that moves a clock).
    Time(Millis),
}

impl At {
    /// The time given; none: the database's.
    pub fn time(self) -> Option<Millis> {
        match self {
            At::Database => None,
            At::Time(t) => Some(t),
        }
    }
}

/// A node of the central system, as it last reported itself.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub name: String,
    pub started_at: Millis,
    pub heard_at: Millis,
    /// Where it listens (`host:port`).
    pub address: String,
    /// The piles whose connection it holds.
    pub piles: i64,
    /// How long it has not been heard from, by the database's clock.
    pub silent_ms: i64,
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Records that `node` is alive `at` (its row created at its first report); false when
    /// the row was missing: the node was new, or had been reaped as silent.
    async fn heartbeat(&self, node: &str, address: &str, at: At) -> Result<bool, StoreError>;
    /// The nodes heard from, by name, with the piles each holds.
    async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError>;
    /// Removes the nodes not heard from for longer than `silent_for` before `at` and clears
    /// the presence of their piles (they show offline); the names of the nodes removed.
    async fn reap_nodes(&self, silent_for: Duration, at: At) -> Result<Vec<String>, StoreError>;
    /// Removes a node and the presence of its piles (a node that stops, or starts again under
    /// the same name); how many piles it held.
    async fn leave(&self, node: &str) -> Result<u64, StoreError>;
    /// Takes or renews the lease `name` for `holder`, for `ttl` from `at`: true when `holder`
    /// holds it now (it was free, expired `at`, or held by `holder` already).
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        at: At,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up, if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
    /// Gives up every lease `holder` holds (a node that stops); how many.
    async fn release_leases(&self, holder: &str) -> Result<u64, StoreError>;
    /// The holder of a lease not expired `at`.
    async fn lease_holder(&self, name: &str, at: At) -> Result<Option<String>, StoreError>;
    /// A shared setting.
    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Stores `value` as the setting `name` unless one is stored; the stored value (so that
    /// nodes starting at once agree on one).
    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError>;
    /// Stores `value` as the setting `name`, in place of any stored.
    async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
