// Sites on sqlx (their terms, their piles, the allocations log): included by the SQLite and the
// PostgreSQL module after `sql_body.rs` (the same portable SQL for both).

const SITE_COLUMNS: &str = "id, name, capacity_a, phases, min_a, failsafe_a, settle_ms, \
    schedule, priorities, created_at";
const ALLOCATION_COLUMNS: &str =
    "site, time, pile, connector, transaction_id, granted_a, queued, why";

#[async_trait]
impl super::site::SiteStore for SqlRepository {
    async fn sites(&self) -> Result<Vec<super::site::SiteRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {SITE_COLUMNS} FROM sites ORDER BY id"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn site(&self, id: i64) -> Result<Option<super::site::SiteRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {SITE_COLUMNS} FROM sites WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn create_site(&self, site: &super::site::SiteRow) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let id: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO sites ({SITE_COLUMNS}) \
             VALUES ({}, $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            next_id("sites")
        ))
        .bind(&site.name)
        .bind(site.capacity_a)
        .bind(site.phases)
        .bind(site.min_a)
        .bind(site.failsafe_a)
        .bind(site.settle_ms)
        .bind(&site.schedule)
        .bind(&site.priorities)
        .bind(site.created_at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn update_site(&self, site: &super::site::SiteRow) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE sites SET name = $1, capacity_a = $2, phases = $3, min_a = $4, \
             failsafe_a = $5, settle_ms = $6, schedule = $7, priorities = $8 WHERE id = $9",
        )
        .bind(&site.name)
        .bind(site.capacity_a)
        .bind(site.phases)
        .bind(site.min_a)
        .bind(site.failsafe_a)
        .bind(site.settle_ms)
        .bind(&site.schedule)
        .bind(&site.priorities)
        .bind(site.id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn delete_site(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let r = sqlx::query("DELETE FROM sites WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for table in ["site_piles", "site_allocations"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE site = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    async fn site_piles(
        &self,
        site: Option<i64>,
    ) -> Result<Vec<super::site::SitePileRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT site, pile, connector FROM site_piles \
             WHERE $1 IS NULL OR site = $1 ORDER BY site, pile",
        )
        .bind(site)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn site_of_pile(
        &self,
        pile: &str,
    ) -> Result<Option<super::site::SitePileRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT site, pile, connector FROM site_piles WHERE pile = $1")
                .bind(pile)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn join_site(
        &self,
        site: i64,
        pile: &str,
        connector: Option<i64>,
    ) -> Result<super::site::Joined, StoreError> {
        use super::site::Joined;
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let known: Option<i64> = sqlx::query_scalar("SELECT id FROM sites WHERE id = $1")
            .bind(site)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Ok(Joined::NoSite);
        }
        // Only where the pile is on no site, or on this one: the key decides between two
        // nodes that add it at once.
        let r = sqlx::query(
            "INSERT INTO site_piles (pile, site, connector) VALUES ($1, $2, $3) \
             ON CONFLICT (pile) DO UPDATE SET connector = excluded.connector \
             WHERE site_piles.site = excluded.site",
        )
        .bind(pile)
        .bind(site)
        .bind(connector)
        .execute(&mut *tx)
        .await?;
        let joined = if r.rows_affected() > 0 {
            Joined::Added
        } else {
            let other: i64 = sqlx::query_scalar("SELECT site FROM site_piles WHERE pile = $1")
                .bind(pile)
                .fetch_one(&mut *tx)
                .await?;
            Joined::OtherSite(other)
        };
        tx.commit().await?;
        Ok(joined)
    }

    async fn leave_site(&self, site: i64, pile: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM site_piles WHERE site = $1 AND pile = $2")
            .bind(site)
            .bind(pile)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    async fn latest_meter_values(
        &self,
        transaction_id: i64,
        limit: i64,
    ) -> Result<Vec<MeterValueRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT pile, connector, transaction_id, time, sampled FROM meter_values \
             WHERE transaction_id = $1 ORDER BY time DESC LIMIT $2",
        )
        .bind(transaction_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn record_allocations(
        &self,
        rows: &[super::site::AllocationRow],
        fence: Option<&Fence>,
    ) -> Result<bool, StoreError> {
        if rows.is_empty() {
            return Ok(true);
        }
        let mut tx = self.pool.begin_with(BEGIN).await?;
        if let Some(f) = fence {
            // The lease row is kept from changing hands until the rows are committed (SQLite:
            // the writer's lock is held already).
            let held: Option<String> = sqlx::query_scalar(&format!(
                "SELECT holder FROM leases WHERE name = $1 AND holder = $2{FENCE_LOCK}"
            ))
            .bind(&f.lease)
            .bind(&f.holder)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_none() {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        for chunk in rows.chunks(ROWS_PER_STATEMENT / 8) {
            let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                "INSERT INTO site_allocations ({ALLOCATION_COLUMNS}) "
            ));
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.site)
                    .push_bind(r.time)
                    .push_bind(r.pile.clone())
                    .push_bind(r.connector)
                    .push_bind(r.transaction_id)
                    .push_bind(r.granted_a)
                    .push_bind(flag(r.queued))
                    .push_bind(r.why.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn last_allocation(
        &self,
        site: i64,
        transaction_id: i64,
    ) -> Result<Option<super::site::AllocationRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ALLOCATION_COLUMNS} FROM site_allocations \
             WHERE site = $1 AND transaction_id = $2 ORDER BY time DESC LIMIT 1"
        ))
        .bind(site)
        .bind(transaction_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn allocations(
        &self,
        site: i64,
        before: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<super::site::AllocationRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ALLOCATION_COLUMNS} FROM site_allocations \
             WHERE site = $1 AND ($2 IS NULL OR time < $2) ORDER BY time DESC, transaction_id LIMIT $3"
        ))
        .bind(site)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
