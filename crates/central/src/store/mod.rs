//! The central system's durable store: one repository trait, implemented on sqlx for SQLite and
//! PostgreSQL with the same portable SQL, and a writer that commits many writes in one
//! database transaction (group commit).

pub mod cluster;
mod column;
pub mod fleet;
pub mod log_block;
pub mod model;
mod samples;
pub mod security;
pub mod site;
mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use cluster::{At, ClusterStore, NodeRow};
pub use fleet::{FleetCounts, PileFilter, Tally};
pub use model::*;
pub use security::{CertificateRow, SecurityEventRow, SecurityStore};
pub use site::{AllocationRow, Joined, SitePileRow, SiteRow, SiteStore};
pub use writer::{LogWriter, Writer};

/// The connections of a PostgreSQL store's pool for the nodes' heartbeats and leases, beside
/// its main pool.
const CLUSTER_CONNECTIONS: u32 = 2;

/// The bytes of an image's chunk rows (all but its last).
pub const IMAGE_CHUNK: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(String),
    #[error("bad database URL {0:?}: use sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("the write failed: {0}")]
    Failed(String),
    #[error("the store's writer has stopped")]
    WriterGone,
}

/// Everything the central system reads and writes.
#[async_trait]
pub trait Repository: ClusterStore + SiteStore + SecurityStore + Send + Sync + 'static {
    /// Applies the writes in one database transaction, in order, and appends the log rows in
    /// the same transaction; all or none.
    async fn apply_and_log(
        &self,
        ops: &[WriteOp],
        log: LogBatch<'_>,
        now: Millis,
    ) -> Result<Vec<WriteResult>, StoreError>;
    /// Applies the writes in one database transaction, in order; all or none.
    async fn apply(&self, ops: &[WriteOp], now: Millis) -> Result<Vec<WriteResult>, StoreError> {
        self.apply_and_log(ops, LogBatch::default(), now).await
    }
    /// Appends to the raw message log and the deviations.
    async fn append_log(
        &self,
        messages: &[LogRow],
        deviations: &[DeviationRow],
    ) -> Result<(), StoreError> {
        let log = LogBatch {
            messages,
            deviations,
        };
        self.apply_and_log(&[], log, 0).await.map(drop)
    }
    /// Removes log rows and deviations older than `before`; how many.
    async fn prune_log(&self, before: Millis) -> Result<u64, StoreError>;

    async fn pile(&self, id: &str) -> Result<Option<PileRow>, StoreError>;
    async fn piles(&self) -> Result<Vec<PileRow>, StoreError>;
    /// The piles that match `filter`, in identity order, after the identity `after`; at most
    /// `limit` of them (all without).
    async fn pile_page(
        &self,
        filter: &PileFilter,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<PileRow>, StoreError>;
    /// The piles of these identities that exist, in identity order (one query per few
    /// hundred).
    async fn piles_of(&self, ids: &[String]) -> Result<Vec<PileRow>, StoreError>;
    /// The connectors of these piles.
    async fn connectors_of(&self, piles: &[String]) -> Result<Vec<ConnectorRow>, StoreError>;
    /// The fleet's tallies; the energy counts the transactions stopped since `since`.
    async fn fleet_counts(&self, since: Millis) -> Result<FleetCounts, StoreError>;
    /// Marks every pile offline (at a start: no connection lives yet).
    async fn forget_connections(&self) -> Result<(), StoreError>;
    async fn connectors(&self, pile: Option<&str>) -> Result<Vec<ConnectorRow>, StoreError>;
    async fn status_history(&self, pile: &str, limit: i64)
        -> Result<Vec<ConnectorRow>, StoreError>;
    async fn id_tag(&self, tag: &str) -> Result<Option<IdTagRow>, StoreError>;
    async fn id_tags(&self) -> Result<Vec<IdTagRow>, StoreError>;
    async fn transactions(
        &self,
        pile: Option<&str>,
        active: Option<bool>,
    ) -> Result<Vec<TransactionRow>, StoreError>;
    async fn transaction(&self, id: i64) -> Result<Option<TransactionRow>, StoreError>;
    async fn meter_values(&self, transaction_id: i64) -> Result<Vec<MeterValueRow>, StoreError>;
    async fn configuration(&self, pile: &str) -> Result<Vec<ConfigRow>, StoreError>;
    async fn configuration_history(&self, pile: &str) -> Result<Vec<ConfigChange>, StoreError>;
    async fn refused(&self, limit: i64) -> Result<Vec<RefusedRow>, StoreError>;
    async fn messages(
        &self,
        pile: &str,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LogRow>, StoreError>;
    async fn deviations(&self, pile: &str, limit: i64) -> Result<Vec<DeviationRow>, StoreError>;
    async fn events(&self, pile: &str, limit: i64) -> Result<Vec<EventRow>, StoreError>;
    async fn commands(&self, pile: &str, limit: i64) -> Result<Vec<CommandRow>, StoreError>;
    async fn images(&self) -> Result<Vec<ImageRow>, StoreError>;
    async fn image(&self, id: i64) -> Result<Option<ImageRow>, StoreError>;
    /// Stores an image: its row and its bytes in one database transaction; answers its id.
    async fn put_image(&self, image: &ImageRow, bytes: &[u8]) -> Result<i64, StoreError>;
    /// The `n`th chunk of an image's bytes (`IMAGE_CHUNK` bytes each but the last, from 0);
    /// none past the last.
    async fn image_chunk(&self, image: i64, n: i64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The images whose bytes the database does not hold (kept in a data directory by an
    /// older version).
    async fn images_without_bytes(&self) -> Result<Vec<ImageRow>, StoreError>;
    /// Stores the bytes of an image whose row is stored (chunks stored already are kept).
    async fn import_image_bytes(&self, image: i64, bytes: &[u8]) -> Result<(), StoreError>;
    /// Stores a campaign and its piles in one database transaction, unless one of its piles
    /// is in another campaign and not done with it (a unique index: of two campaigns created
    /// at once, on any nodes, one gets the pile).
    async fn create_campaign(
        &self,
        spec: &str,
        rollouts: &[RolloutRow],
        now: Millis,
    ) -> Result<CampaignCreated, StoreError>;
    async fn campaigns(&self) -> Result<Vec<CampaignRow>, StoreError>;
    async fn rollouts(&self, campaign: i64) -> Result<Vec<RolloutRow>, StoreError>;
}

pub mod sqlite {
    //! The repository on SQLite (WAL, synchronous=FULL: a commit survives a crash of the process
    //! and of the machine).
    type Db = sqlx::Sqlite;
    /// A writer takes the lock at once, so that a read before its writes cannot deadlock.
    const BEGIN: &str = "BEGIN IMMEDIATE";
    /// The rows an older version wrote to `message_log`, newest first: by time, then as
    /// numbered.
    const LOG_ORDER: &str = "time DESC, seq DESC";
    /// New transaction ids are past a reconciled one's by `next_id` already.
    const ADVANCE_TRANSACTION_IDS: Option<&str> = None;
    /// The database's clock, milliseconds since the Unix epoch.
    const DB_NOW: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
    /// A lease row read by a fenced write: one writer holds the database's lock already.
    const FENCE_LOCK: &str = "";

    /// The next id of a table: one writer holds the lock, so the largest plus one.
    fn next_id(table: &str) -> String {
        format!("(SELECT COALESCE(MAX(id), 0) + 1 FROM {table})")
    }

    /// The shared migrations, then the SQLite-only ones (as on PostgreSQL).
    async fn migrate(pool: &sqlx::Pool<Db>) -> Result<(), sqlx::migrate::MigrateError> {
        super::migrate_shared_then!(pool, "./migrations_sqlite")
    }
    include!("sql_body.rs");
    include!("sql_writes.rs");
    include!("sql_grouped.rs");
    include!("sql_transactions.rs");
    include!("sql_firmware.rs");
    include!("sql_fleet.rs");
    include!("sql_cluster.rs");
    include!("sql_site.rs");
    include!("sql_security.rs");
    include!("sql_profiles.rs");
    include!("sql_log.rs");
}

pub mod postgres {
    //! The repository on PostgreSQL.
    type Db = sqlx::Postgres;
    const BEGIN: &str = "BEGIN";
    /// The rows an older version wrote to `message_log`, newest first: in the order they
    /// were inserted.
    const LOG_ORDER: &str = "seq DESC";
    /// Moves the sequence past the id of a reconciled transaction (a pile invented it), so
    /// that new ids go past it. Not atomic with other nodes' `nextval`, so a start still
    /// skips an id it finds taken (`start_transaction`).
    const ADVANCE_TRANSACTION_IDS: Option<&str> = Some(
        "SELECT setval('transactions_id_seq', $1) FROM transactions_id_seq WHERE last_value < $1",
    );
    /// The database's clock, milliseconds since the Unix epoch (as each statement runs).
    const DB_NOW: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";
    /// A lease row read by a fenced write is locked until the write's transaction ends: a node
    /// taking the lease over waits for it, and reads what it wrote.
    const FENCE_LOCK: &str = " FOR SHARE";

    /// The next id of a table, from its sequence (migrations_postgres): many nodes insert at
    /// once.
    fn next_id(table: &str) -> String {
        format!("nextval('{table}_id_seq')")
    }

    /// The shared migrations, then the PostgreSQL-only ones.
    async fn migrate(pool: &sqlx::Pool<Db>) -> Result<(), sqlx::migrate::MigrateError> {
        super::migrate_shared_then!(pool, "./migrations_postgres")
    }
    include!("sql_body.rs");
    include!("sql_writes.rs");
    include!("sql_grouped.rs");
    include!("sql_transactions.rs");
    include!("sql_firmware.rs");
    include!("sql_fleet.rs");
    include!("sql_cluster.rs");
    include!("sql_site.rs");
    include!("sql_security.rs");
    include!("sql_profiles.rs");
    include!("sql_log.rs");
}

/// After the shared migrations and a database's own ran: both record their versions in one
/// table, so each run ignores the other's; a version neither knows (a database of a newer
/// version) is refused.
fn known_versions(
    applied: Vec<i64>,
    shared: &sqlx::migrate::Migrator,
    own: &sqlx::migrate::Migrator,
) -> Result<(), sqlx::migrate::MigrateError> {
    let known = |v: &i64| shared.iter().chain(own.iter()).any(|m| m.version == *v);
    match applied.into_iter().find(|v| !known(v)) {
        Some(v) => Err(sqlx::migrate::MigrateError::VersionMissing(v)),
        None => Ok(()),
    }
}

/// The migrations of one database: the shared ones, then its own.
macro_rules! migrate_shared_then {
    ($pool:expr, $own:literal) => {{
        let mut shared = sqlx::migrate!("./migrations");
        shared.set_ignore_missing(true);
        shared.run($pool).await?;
        let mut own = sqlx::migrate!($own);
        own.set_ignore_missing(true);
        own.run($pool).await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
            .fetch_all($pool)
            .await?;
        super::known_versions(applied, &shared, &own)
    }};
}
use migrate_shared_then;

/// Opens the database a URL names, applies the migrations, and returns its repository.
///
/// `sqlite://PATH` (created when missing) or `postgres://...`; a PostgreSQL URL may carry
/// `schema=NAME`, the schema to work in (created when missing).
pub async fn open(url: &str) -> Result<Arc<dyn Repository>, StoreError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(false)
            // Checkpoint every 16 MiB of WAL rather than every 4 MiB: the pages a checkpoint
            // copies are mostly the same hot index pages, so fewer checkpoints copy less.
            .pragma("wal_autocheckpoint", "4000");
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let repo = sqlite::SqlRepository::new(pool);
        repo.migrate().await?;
        Ok(Arc::new(repo))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, schema) = split_schema(url);
        let mut options = sqlx::postgres::PgConnectOptions::from_str(&base)?;
        if let Some(schema) = &schema {
            if !schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(StoreError::BadUrl(url.into()));
            }
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&pool)
                .await?;
            pool.close().await;
            options = options.options([("search_path", schema.as_str())]);
        }
        // No ping before each use: it doubled the round trips of every read (a tenth of a
        // node's CPU in a boot storm, where each handshake looks its pile up). A connection
        // that broke fails its query, which is answered as a store error, and is dropped.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await?;
        let cluster = sqlx::postgres::PgPoolOptions::new()
            .max_connections(CLUSTER_CONNECTIONS)
            .connect_with(options)
            .await?;
        let repo = postgres::SqlRepository::with_cluster_pool(pool, cluster);
        repo.migrate().await?;
        Ok(Arc::new(repo))
    } else {
        Err(StoreError::BadUrl(url.into()))
    }
}

/// Takes a `schema=NAME` query parameter out of a PostgreSQL URL.
fn split_schema(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut schema = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("schema=") {
            Some(s) => {
                schema = Some(s.to_owned());
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, schema)
}

#[cfg(test)]
mod tests {
    #[test]
    fn schema_parameter() {
        assert_eq!(
            super::split_schema("postgres://h/test?schema=s1&sslmode=disable"),
            (
                "postgres://h/test?sslmode=disable".into(),
                Some("s1".into())
            )
        );
        assert_eq!(
            super::split_schema("postgres://h/test"),
            ("postgres://h/test".into(), None)
        );
    }
}
