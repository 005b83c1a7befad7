// Firmware images and campaigns on sqlx: included by the SQLite and the PostgreSQL module after
// `sql_body.rs` (the same portable SQL for both).

fn image_row(r: &DbRow) -> Result<ImageRow, sqlx::Error> {
    Ok(ImageRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        target: r.try_get("target")?,
        model: r.try_get("model")?,
        version: r.try_get("version")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        created_at: r.try_get("created_at")?,
    })
}

fn campaign_row(r: &DbRow) -> Result<CampaignRow, sqlx::Error> {
    Ok(CampaignRow {
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        spec: r.try_get("spec")?,
        state: r.try_get("state")?,
        finished_at: r.try_get("finished_at")?,
    })
}

const IMAGE_COLUMNS: &str = "id, name, target, model, version, size, sha256, created_at";

impl SqlRepository {
    async fn read_images(&self) -> Result<Vec<ImageRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {IMAGE_COLUMNS} FROM firmware_images ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(image_row).collect::<Result<_, _>>()?)
    }

    async fn read_image(&self, id: i64) -> Result<Option<ImageRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {IMAGE_COLUMNS} FROM firmware_images WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(image_row).transpose()?)
    }

    async fn read_campaigns(&self) -> Result<Vec<CampaignRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, spec, state, finished_at FROM campaigns ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(campaign_row).collect::<Result<_, _>>()?)
    }

    async fn read_rollouts(&self, campaign: i64) -> Result<Vec<RolloutRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT campaign, position, pile, phase, outcome, state FROM campaign_piles \
             WHERE campaign = $1 ORDER BY position",
        )
        .bind(campaign)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RolloutRow {
                    campaign: r.try_get("campaign")?,
                    position: r.try_get("position")?,
                    pile: r.try_get("pile")?,
                    phase: r.try_get("phase")?,
                    outcome: r.try_get("outcome")?,
                    state: r.try_get("state")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
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
        other => Err(sqlx::Error::Protocol(format!(
            "not a firmware write: {other:?}"
        ))),
    }
}
