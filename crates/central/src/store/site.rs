//! What the store keeps of sites: their terms, which piles belong to which, and the record of
//! the allocator's decisions.

use async_trait::async_trait;

use super::{Fence, MeterValueRow, Millis, StoreError};

/// A site's terms as stored (checked by the API before they are).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SiteRow {
    pub id: i64,
    pub name: String,
    /// A per phase.
    pub capacity_a: f64,
    pub phases: i64,
    pub min_a: f64,
    pub failsafe_a: f64,
    pub settle_ms: i64,
    /// The schedule of lower limits (JSON), as the API takes it.
    pub schedule: Option<String>,
    /// The priority groups (JSON: idTag to group).
    pub priorities: Option<String>,
    pub created_at: Millis,
}

/// A pile on a site: all its connectors, or only `connector`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SitePileRow {
    pub site: i64,
    pub pile: String,
    pub connector: Option<i64>,
}

/// One decision of a site's allocator.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AllocationRow {
    pub site: i64,
    pub time: Millis,
    pub pile: String,
    pub connector: i64,
    pub transaction_id: i64,
    pub granted_a: f64,
    /// It waits for capacity.
    #[sqlx(try_from = "super::column::Flag")]
    pub queued: bool,
    pub why: String,
}

/// What a pile joining a site came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// It is on the site now (it was not, or was with other connectors).
    Added,
    /// It belongs to this other site: refused.
    OtherSite(i64),
    /// No such site.
    NoSite,
}

#[async_trait]
pub trait SiteStore: Send + Sync {
    /// The sites, by id.
    async fn sites(&self) -> Result<Vec<SiteRow>, StoreError>;
    async fn site(&self, id: i64) -> Result<Option<SiteRow>, StoreError>;
    /// Stores a new site (its `id` unused); answers its id.
    async fn create_site(&self, site: &SiteRow) -> Result<i64, StoreError>;
    /// Replaces a site's terms (its `created_at` kept); false: no such site.
    async fn update_site(&self, site: &SiteRow) -> Result<bool, StoreError>;
    /// Removes a site, its piles' membership and its allocations; false: no such site.
    async fn delete_site(&self, id: i64) -> Result<bool, StoreError>;
    /// The piles of a site (all sites' without), by site and pile.
    async fn site_piles(&self, site: Option<i64>) -> Result<Vec<SitePileRow>, StoreError>;
    /// The site a pile belongs to.
    async fn site_of_pile(&self, pile: &str) -> Result<Option<SitePileRow>, StoreError>;
    /// Puts a pile (or one of its connectors) on a site, unless it belongs to another.
    async fn join_site(
        &self,
        site: i64,
        pile: &str,
        connector: Option<i64>,
    ) -> Result<Joined, StoreError>;
    /// Takes a pile off a site; false: it was not on it.
    async fn leave_site(&self, site: i64, pile: &str) -> Result<bool, StoreError>;
    /// A transaction's latest meter values, newest first, at most `limit`.
    async fn latest_meter_values(
        &self,
        transaction_id: i64,
        limit: i64,
    ) -> Result<Vec<MeterValueRow>, StoreError>;
    /// Appends decisions to the allocations log, under `fence` if given (the site's lease, in
    /// a cluster): false, and nothing written, when this holder no longer holds that lease.
    async fn record_allocations(
        &self,
        rows: &[AllocationRow],
        fence: Option<&Fence>,
    ) -> Result<bool, StoreError>;
    /// The last decision about a session of a site.
    async fn last_allocation(
        &self,
        site: i64,
        transaction_id: i64,
    ) -> Result<Option<AllocationRow>, StoreError>;
    /// A site's decisions, newest first, at most `limit`, from before `before` if given.
    async fn allocations(
        &self,
        site: i64,
        before: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<AllocationRow>, StoreError>;
}
