// Firmware images and campaigns on sqlx: included by the SQLite and the PostgreSQL module after
// `sql_body.rs` (the same portable SQL for both).

const IMAGE_COLUMNS: &str = "id, name, target, model, version, size, sha256, created_at";

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

async fn put_rollout(tx: &mut Tx, r: &RolloutRow, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO campaign_piles (campaign, position, pile, phase, outcome, state, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (campaign, pile) DO UPDATE SET phase = excluded.phase, \
         outcome = excluded.outcome, state = excluded.state, updated_at = excluded.updated_at",
    )
    .bind(r.campaign)
    .bind(r.position)
    .bind(&r.pile)
    .bind(&r.phase)
    .bind(&r.outcome)
    .bind(&r.state)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The writes of images and campaigns.
async fn apply_firmware(
    tx: &mut Tx,
    op: &WriteOp,
    now: Millis,
) -> Result<WriteResult, sqlx::Error> {
    match op {
        WriteOp::PutImage(image) => {
            let id: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM firmware_images")
                    .fetch_one(&mut **tx)
                    .await?;
            sqlx::query(&format!(
                "INSERT INTO firmware_images ({IMAGE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(id)
            .bind(&image.name)
            .bind(&image.target)
            .bind(&image.model)
            .bind(&image.version)
            .bind(image.size)
            .bind(&image.sha256)
            .bind(image.created_at)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Id(id))
        }
        WriteOp::CreateCampaign { spec, rollouts } => {
            let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM campaigns")
                .fetch_one(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO campaigns (id, created_at, spec, state) VALUES ($1, $2, $3, 'running')",
            )
            .bind(id)
            .bind(now)
            .bind(spec)
            .execute(&mut **tx)
            .await?;
            for r in rollouts {
                let r = RolloutRow {
                    campaign: id,
                    ..r.clone()
                };
                put_rollout(tx, &r, now).await?;
            }
            Ok(WriteResult::Id(id))
        }
        WriteOp::CampaignState {
            id,
            state,
            finished_at,
        } => {
            sqlx::query("UPDATE campaigns SET state = $1, finished_at = $2 WHERE id = $3")
                .bind(state)
                .bind(finished_at)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(WriteResult::Done)
        }
        WriteOp::PutRollout(r) => {
            put_rollout(tx, r, now).await?;
            Ok(WriteResult::Done)
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
