// Firmware images and campaigns on sqlx: included by the SQLite and the PostgreSQL module after
// `sql_body.rs` (the same portable SQL for both).

const IMAGE_COLUMNS: &str =
    "id, name, target, model, version, size, sha256, created_at, signature, signing_certificate";

impl SqlRepository {
    async fn read_images(&self) -> Result<Vec<ImageRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM firmware_images ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn read_image(&self, id: i64) -> Result<Option<ImageRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM firmware_images WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn read_images_without_bytes(&self) -> Result<Vec<ImageRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {IMAGE_COLUMNS} FROM firmware_images WHERE NOT EXISTS \
             (SELECT 1 FROM firmware_chunks WHERE image = firmware_images.id) ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn read_image_chunk(&self, image: i64, n: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT data FROM firmware_chunks WHERE image = $1 AND n = $2")
                .bind(image)
                .bind(n)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The image's row and its bytes in one transaction: its id is never seen without them.
    async fn insert_image(&self, image: &ImageRow, bytes: &[u8]) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let id: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO firmware_images ({IMAGE_COLUMNS}) \
             VALUES ({}, $1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            next_id("firmware_images")
        ))
        .bind(&image.name)
        .bind(&image.target)
        .bind(&image.model)
        .bind(&image.version)
        .bind(image.size)
        .bind(&image.sha256)
        .bind(image.created_at)
        .bind(&image.signature)
        .bind(&image.signing_certificate)
        .fetch_one(&mut *tx)
        .await?;
        insert_chunks(&mut tx, id, bytes).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn insert_image_bytes(&self, image: i64, bytes: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        insert_chunks(&mut tx, image, bytes).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_campaign(
        &self,
        spec: &str,
        rollouts: &[RolloutRow],
        now: Millis,
    ) -> Result<CampaignCreated, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let id: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO campaigns (id, created_at, spec, state) \
             VALUES ({}, $1, $2, 'running') RETURNING id",
            next_id("campaigns")
        ))
        .bind(now)
        .bind(spec)
        .fetch_one(&mut *tx)
        .await?;
        for r in rollouts {
            // Nothing inserted: the pile's row of another campaign, not done, holds the index
            // `campaign_piles_active` (a creation not committed yet is waited for).
            let inserted = sqlx::query(
                "INSERT INTO campaign_piles \
                 (campaign, position, pile, phase, outcome, state, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(r.position)
            .bind(&r.pile)
            .bind(&r.phase)
            .bind(&r.outcome)
            .bind(&r.state)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                let campaign: Option<i64> = sqlx::query_scalar(
                    "SELECT campaign FROM campaign_piles WHERE pile = $1 AND phase <> 'done'",
                )
                .bind(&r.pile)
                .fetch_optional(&mut *tx)
                .await?;
                tx.rollback().await?;
                return Ok(CampaignCreated::Busy {
                    pile: r.pile.clone(),
                    campaign: campaign.unwrap_or_default(),
                });
            }
        }
        tx.commit().await?;
        Ok(CampaignCreated::Id(id))
    }

    async fn read_campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, created_at, spec, state, finished_at FROM campaigns ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn read_rollouts(&self, campaign: i64) -> Result<Vec<RolloutRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT campaign, position, pile, phase, outcome, state FROM campaign_piles \
             WHERE campaign = $1 ORDER BY position",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// An image's bytes in chunk rows; a chunk stored already (another node importing the same
/// image) is kept.
async fn insert_chunks(tx: &mut Tx, image: i64, bytes: &[u8]) -> Result<(), sqlx::Error> {
    for (n, data) in bytes.chunks(super::IMAGE_CHUNK).enumerate() {
        sqlx::query(
            "INSERT INTO firmware_chunks (image, n, data) VALUES ($1, $2, $3) \
             ON CONFLICT (image, n) DO NOTHING",
        )
        .bind(image)
        .bind(n as i64)
        .bind(data)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The condition of a write fenced by a lease whose name and holder are bound as `$n` and
/// `$n+1`.
fn fence_held(n: usize) -> String {
    format!(
        "EXISTS (SELECT 1 FROM leases WHERE name = ${n} AND holder = ${}{FENCE_LOCK})",
        n + 1
    )
}

/// Writes a pile's upgrade state; the rows written (none: its fence no longer holds).
async fn put_rollout(
    tx: &mut Tx,
    r: &RolloutRow,
    fence: Option<&Fence>,
    now: Millis,
) -> Result<u64, sqlx::Error> {
    let held = match fence {
        Some(_) => fence_held(8),
        None => "1 = 1".to_owned(),
    };
    let q = format!(
        "INSERT INTO campaign_piles (campaign, position, pile, phase, outcome, state, updated_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE {held} \
         ON CONFLICT (campaign, pile) DO UPDATE SET phase = excluded.phase, \
         outcome = excluded.outcome, state = excluded.state, updated_at = excluded.updated_at"
    );
    let mut q = sqlx::query(&q)
        .bind(r.campaign)
        .bind(r.position)
        .bind(&r.pile)
        .bind(&r.phase)
        .bind(&r.outcome)
        .bind(&r.state)
        .bind(now);
    if let Some(f) = fence {
        q = q.bind(&f.lease).bind(&f.holder);
    }
    Ok(q.execute(&mut **tx).await?.rows_affected())
}

/// The writes of images and campaigns.
async fn apply_firmware(
    tx: &mut Tx,
    op: &WriteOp,
    now: Millis,
) -> Result<WriteResult, sqlx::Error> {
    match op {
        WriteOp::CampaignState {
            id,
            state,
            finished_at,
            fence,
        } => {
            let held = match fence {
                Some(_) => fence_held(4),
                None => "1 = 1".to_owned(),
            };
            let q = format!(
                "UPDATE campaigns SET state = $1, finished_at = $2 WHERE id = $3 AND {held}"
            );
            let mut q = sqlx::query(&q).bind(state).bind(finished_at).bind(id);
            if let Some(f) = fence {
                q = q.bind(&f.lease).bind(&f.holder);
            }
            let r = q.execute(&mut **tx).await?;
            Ok(WriteResult::Affected(r.rows_affected()))
        }
        WriteOp::PutRollout { row, fence } => {
            let written = put_rollout(tx, row, fence.as_ref(), now).await?;
            Ok(WriteResult::Affected(written))
        }
        WriteOp::CancelCampaign { id } => {
            let r = sqlx::query(
                "UPDATE campaigns SET state = 'cancelling' \
                 WHERE id = $1 AND state IN ('running', 'cancelling')",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Affected(r.rows_affected()))
        }
        other => Err(sqlx::Error::Protocol(format!(
            "not a firmware write: {other:?}"
        ))),
    }
}
