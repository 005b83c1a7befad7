// The cluster's rows on sqlx (nodes, presence, leases, settings): included by the SQLite and the
// PostgreSQL module after `sql_body.rs` (the same portable SQL for both). The times compared
// across nodes are the database's (`DB_NOW`), unless a test gives one (`At::Time`).

use std::time::Duration;

use super::cluster::At;

#[async_trait]
impl super::cluster::ClusterStore for SqlRepository {
    async fn heartbeat(&self, node: &str, address: &str, at: At) -> Result<bool, StoreError> {
        let updated = sqlx::query(&format!(
            "UPDATE nodes SET heard_at = COALESCE($1, {DB_NOW}), address = $2 WHERE name = $3"
        ))
        .bind(at.time())
        .bind(address)
        .bind(node)
        .execute(&self.cluster)
        .await?;
        if updated.rows_affected() > 0 {
            return Ok(true);
        }
        sqlx::query(&format!(
            "INSERT INTO nodes (name, started_at, heard_at, address) \
             VALUES ($1, COALESCE($2, {DB_NOW}), COALESCE($2, {DB_NOW}), $3) \
             ON CONFLICT (name) DO UPDATE SET heard_at = excluded.heard_at, \
             address = excluded.address"
        ))
        .bind(node)
        .bind(at.time())
        .bind(address)
        .execute(&self.cluster)
        .await?;
        Ok(false)
    }

    async fn nodes(&self) -> Result<Vec<super::cluster::NodeRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT name, started_at, heard_at, address, \
             (SELECT COUNT(*) FROM piles WHERE piles.node = nodes.name AND connection IS NOT NULL) \
             AS piles, CAST({DB_NOW} - heard_at AS BIGINT) AS silent_ms FROM nodes ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn reap_nodes(&self, silent_for: Duration, at: At) -> Result<Vec<String>, StoreError> {
        let mut tx = self.cluster.begin().await?;
        let before: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(COALESCE($1, {DB_NOW}) - $2 AS BIGINT)"
        ))
        .bind(at.time())
        .bind(millis(silent_for))
        .fetch_one(&mut *tx)
        .await?;
        let silent: Vec<String> =
            sqlx::query_scalar("SELECT name FROM nodes WHERE heard_at < $1 ORDER BY name")
                .bind(before)
                .fetch_all(&mut *tx)
                .await?;
        for node in &silent {
            // Only if it is still silent: it may have spoken since the read.
            let gone = sqlx::query("DELETE FROM nodes WHERE name = $1 AND heard_at < $2")
                .bind(node)
                .bind(before)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() > 0 {
                clear_presence(&mut tx, node).await?;
            }
        }
        tx.commit().await?;
        Ok(silent)
    }

    async fn leave(&self, node: &str) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM nodes WHERE name = $1")
            .bind(node)
            .execute(&mut *tx)
            .await?;
        let cleared = clear_presence(&mut tx, node).await?;
        tx.commit().await?;
        Ok(cleared)
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        at: At,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(&format!(
            "INSERT INTO leases (name, holder, expires_at) \
             VALUES ($1, $2, COALESCE($3, {DB_NOW}) + $4) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < COALESCE($3, {DB_NOW})"
        ))
        .bind(name)
        .bind(holder)
        .bind(at.time())
        .bind(millis(ttl))
        .execute(&self.cluster)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.cluster)
            .await?;
        Ok(())
    }

    async fn release_leases(&self, holder: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM leases WHERE holder = $1")
            .bind(holder)
            .execute(&self.cluster)
            .await?;
        Ok(r.rows_affected())
    }

    async fn lease_holder(&self, name: &str, at: At) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT holder FROM leases WHERE name = $1 AND expires_at >= COALESCE($2, {DB_NOW})"
        ))
        .bind(name)
        .bind(at.time())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn init_setting(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(stored)
    }

    async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// A duration in milliseconds, as the rows keep times.
fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Clears the presence of every pile whose connection `node` held; how many.
async fn clear_presence(tx: &mut Tx, node: &str) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE piles SET connection = NULL, node = NULL, connected_at = NULL WHERE node = $1",
    )
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected())
}
