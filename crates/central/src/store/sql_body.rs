// The repository on sqlx, written once over the database type `Db` and included by the SQLite
// and the PostgreSQL module: the SQL is portable, so both run the same statements.

use async_trait::async_trait;

use super::model::*;
use super::{FleetCounts, PileFilter, Repository, StoreError, Tally};

type Tx = sqlx::Transaction<'static, Db>;

/// The repository on a pool, and the pool of the cluster's heartbeats and leases.
pub struct SqlRepository {
    pool: sqlx::Pool<Db>,
    /// The heartbeats and the leases: a pool of their own where the database has many
    /// writers, so that they never wait behind the group commit and the pages' reads (a
    /// heartbeat that waits past the node's time to live gets the node reaped).
    cluster: sqlx::Pool<Db>,
}

impl SqlRepository {
    /// The repository on one pool, the cluster's rows too.
    pub fn new(pool: sqlx::Pool<Db>) -> Self {
        SqlRepository {
            cluster: pool.clone(),
            pool,
        }
    }

    /// The repository on `pool`, the heartbeats and leases on `cluster`.
    pub fn with_cluster_pool(pool: sqlx::Pool<Db>, cluster: sqlx::Pool<Db>) -> Self {
        SqlRepository { pool, cluster }
    }

    pub fn pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

const PILE_COLUMNS: &str = "id, password_hash, registration, vendor, model, serial_number, \
    charge_box_serial_number, firmware_version, iccid, imsi, meter_type, meter_serial_number, \
    firmware_status, diagnostics_status, created_at, last_boot, last_seen, connection, node, connected_at, \
    security_profile, connected_profile, previous_password_hash";
const TRANSACTION_COLUMNS: &str = "id, pile, connector, id_tag, start_time, meter_start, \
    reservation_id, stop_time, meter_stop, stop_id_tag, reason, reconciled, meter_last";

#[async_trait]
impl Repository for SqlRepository {
    async fn apply_and_log(
        &self,
        ops: &[WriteOp],
        log: LogBatch<'_>,
        now: Millis,
    ) -> Result<Vec<WriteResult>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let mut results = vec![WriteResult::Done; ops.len()];
        let plan = grouping(ops);
        let plan = &plan;
        let planned = |how: Grouping| {
            ops.iter()
                .enumerate()
                .filter(move |(i, _)| plan[*i] == how)
        };
        let admissions: Vec<(usize, &WriteOp)> = planned(Grouping::Admission).collect();
        admit_piles(&mut tx, &admissions, now, &mut results).await?;
        for (i, op) in planned(Grouping::Alone) {
            results[i] = apply_one(&mut tx, op, now).await?;
        }
        let after: Vec<&WriteOp> = planned(Grouping::After).map(|(_, op)| op).collect();
        apply_after(&mut tx, &after, now).await?;
        insert_samples(&mut tx, &batch_samples(ops)).await?;
        note_registers(&mut tx, ops).await?;
        let mut seen: Vec<&str> = ops.iter().filter_map(WriteOp::seen_pile).collect();
        seen.sort_unstable();
        seen.dedup();
        touch(&mut tx, &seen, now).await?;
        insert_log(&mut tx, log).await?;
        tx.commit().await?;
        Ok(results)
    }

    async fn prune_log(&self, before: Millis) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for table in ["message_log", "deviations"] {
            deleted += sqlx::query(&format!("DELETE FROM {table} WHERE time < $1"))
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        deleted += self.prune_blocks(before).await?;
        Ok(deleted)
    }

    async fn pile(&self, id: &str) -> Result<Option<PileRow>, StoreError> {
        let q = format!("SELECT {PILE_COLUMNS} FROM piles WHERE id = $1");
        Ok(sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn piles(&self) -> Result<Vec<PileRow>, StoreError> {
        let q = format!("SELECT {PILE_COLUMNS} FROM piles ORDER BY id");
        Ok(sqlx::query_as(&q).fetch_all(&self.pool).await?)
    }

    async fn pile_page(
        &self,
        filter: &PileFilter,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<PileRow>, StoreError> {
        self.read_pile_page(filter, after, limit).await
    }

    async fn piles_of(&self, ids: &[String]) -> Result<Vec<PileRow>, StoreError> {
        self.read_piles_of(ids).await
    }

    async fn connectors_of(&self, piles: &[String]) -> Result<Vec<ConnectorRow>, StoreError> {
        self.read_connectors_of(piles).await
    }

    async fn fleet_counts(&self, since: Millis) -> Result<FleetCounts, StoreError> {
        self.read_fleet_counts(since).await
    }

    async fn forget_connections(&self) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE piles SET connection = NULL, node = NULL, connected_at = NULL \
             WHERE connection IS NOT NULL",
        )
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn connectors(&self, pile: Option<&str>) -> Result<Vec<ConnectorRow>, StoreError> {
        let base = "SELECT pile, connector, status, error_code, vendor_error_code, info, time \
                    FROM connectors";
        let rows = match pile {
            Some(p) => {
                sqlx::query_as(&format!("{base} WHERE pile = $1 ORDER BY connector"))
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query_as(&format!("{base} ORDER BY pile, connector"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows)
    }

    async fn status_history(
        &self,
        pile: &str,
        limit: i64,
    ) -> Result<Vec<ConnectorRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pile, connector, status, error_code, vendor_error_code, info, time \
             FROM status_history WHERE pile = $1 ORDER BY time DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn id_tag(&self, tag: &str) -> Result<Option<IdTagRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id_tag, status, expiry_date, parent_id_tag FROM id_tags WHERE id_tag = $1",
        )
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn id_tags(&self) -> Result<Vec<IdTagRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id_tag, status, expiry_date, parent_id_tag FROM id_tags ORDER BY id_tag",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn transactions(
        &self,
        pile: Option<&str>,
        active: Option<bool>,
    ) -> Result<Vec<TransactionRow>, StoreError> {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!(
            "SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE 1 = 1"
        ));
        if let Some(p) = pile {
            q.push(" AND pile = ").push_bind(p.to_owned());
        }
        match active {
            Some(true) => {
                q.push(" AND stop_time IS NULL");
            }
            Some(false) => {
                q.push(" AND stop_time IS NOT NULL");
            }
            None => {}
        }
        q.push(" ORDER BY id DESC");
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn transaction(&self, id: i64) -> Result<Option<TransactionRow>, StoreError> {
        let q = format!("SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE id = $1");
        Ok(sqlx::query_as(&q)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn meter_values(&self, transaction_id: i64) -> Result<Vec<MeterValueRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pile, connector, transaction_id, time, sampled FROM meter_values \
             WHERE transaction_id = $1 ORDER BY time",
        )
        .bind(transaction_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn configuration(&self, pile: &str) -> Result<Vec<ConfigRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, value, readonly, read_at FROM configuration WHERE pile = $1 ORDER BY key",
        )
        .bind(pile)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn configuration_history(&self, pile: &str) -> Result<Vec<ConfigChange>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, time, old_value, new_value FROM configuration_history WHERE pile = $1 \
             ORDER BY time DESC, key",
        )
        .bind(pile)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn refused(&self, limit: i64) -> Result<Vec<RefusedRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT time, remote, identity, reason, http_status FROM refused_handshakes \
             ORDER BY time DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn messages(
        &self,
        pile: &str,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LogRow>, StoreError> {
        let mut rows = self.block_messages(pile, action, limit).await?;
        let older = limit - rows.len() as i64;
        if older > 0 {
            // The rows an older version wrote, all older than every block.
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "SELECT pile, time, seq, direction, action, message_id, frame FROM message_log WHERE pile = ",
            );
            q.push_bind(pile.to_owned());
            if let Some(a) = action {
                q.push(" AND action = ").push_bind(a.to_owned());
            }
            q.push(format!(" ORDER BY {LOG_ORDER} LIMIT "))
                .push_bind(older);
            rows.extend(q.build_query_as::<LogRow>().fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    async fn deviations(&self, pile: &str, limit: i64) -> Result<Vec<DeviationRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pile, time, action, kind, detail FROM deviations WHERE pile = $1 \
             ORDER BY time DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn events(&self, pile: &str, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pile, time, kind, detail FROM pile_events WHERE pile = $1 \
             ORDER BY time DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn commands(&self, pile: &str, limit: i64) -> Result<Vec<CommandRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, pile, action, payload, sent_at, answered_at, outcome, result FROM commands \
             WHERE pile = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn images(&self) -> Result<Vec<ImageRow>, StoreError> {
        self.read_images().await
    }

    async fn image(&self, id: i64) -> Result<Option<ImageRow>, StoreError> {
        self.read_image(id).await
    }

    async fn put_image(&self, image: &ImageRow, bytes: &[u8]) -> Result<i64, StoreError> {
        self.insert_image(image, bytes).await
    }

    async fn image_chunk(&self, image: i64, n: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_image_chunk(image, n).await
    }

    async fn images_without_bytes(&self) -> Result<Vec<ImageRow>, StoreError> {
        self.read_images_without_bytes().await
    }

    async fn import_image_bytes(&self, image: i64, bytes: &[u8]) -> Result<(), StoreError> {
        self.insert_image_bytes(image, bytes).await
    }

    async fn create_campaign(
        &self,
        spec: &str,
        rollouts: &[RolloutRow],
        now: Millis,
    ) -> Result<CampaignCreated, StoreError> {
        self.insert_campaign(spec, rollouts, now).await
    }

    async fn campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        self.read_campaigns().await
    }

    async fn rollouts(&self, campaign: i64) -> Result<Vec<RolloutRow>, StoreError> {
        self.read_rollouts(campaign).await
    }
}
