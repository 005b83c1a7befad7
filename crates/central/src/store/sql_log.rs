// The raw message log in blocks (log_block.rs): written in the group commit's transaction,
// read newest first through a pile's rows of `message_block_piles`, pruned a block at a time.
// Included in each database's module, like sql_body.rs.

/// The most frames one block holds (a group commit's log takes several past it).
const MAX_BLOCK_FRAMES: usize = 4096;
/// Blocks read at a time while a pile's frames are gathered.
const BLOCKS_PER_READ: i64 = 16;

#[derive(sqlx::FromRow)]
struct StoredBlock {
    id: i64,
    data: Vec<u8>,
}

impl SqlRepository {
    /// A pile's frames in the blocks, newest first, at most `limit`.
    async fn block_messages(
        &self,
        pile: &str,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LogRow>, StoreError> {
        let mut found = Vec::new();
        let mut before = i64::MAX;
        while (found.len() as i64) < limit {
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "SELECT b.id, b.data FROM message_block_piles p \
                 JOIN message_blocks b ON b.id = p.block WHERE p.pile = ",
            );
            q.push_bind(pile.to_owned())
                .push(" AND p.block < ")
                .push_bind(before);
            if let Some(a) = action {
                q.push(" AND (p.actions & ")
                    .push_bind(super::log_block::action_bit(Some(a)))
                    .push(") <> 0");
            }
            q.push(" ORDER BY p.block DESC LIMIT ")
                .push_bind(BLOCKS_PER_READ);
            let blocks: Vec<StoredBlock> = q.build_query_as().fetch_all(&self.pool).await?;
            let Some(last) = blocks.last() else {
                break;
            };
            before = last.id;
            for block in &blocks {
                let rows = super::log_block::decode(block.id, &block.data)
                    .map_err(|e| StoreError::Failed(e.to_string()))?;
                found.extend(
                    rows.into_iter()
                        .rev()
                        .filter(|r| r.pile == pile && (action.is_none() || r.action.as_deref() == action)),
                );
            }
        }
        found.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(found)
    }

    /// Removes the blocks before the first that holds a frame of `before` or later, and their
    /// piles' rows; how many frames they held.
    async fn prune_blocks(&self, before: Millis) -> Result<u64, StoreError> {
        let (cut, frames): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT MAX(id), CAST(SUM(frames) AS BIGINT) FROM message_blocks WHERE id < \
             COALESCE((SELECT MIN(id) FROM message_blocks WHERE last_time >= $1), $2)",
        )
        .bind(before)
        .bind(i64::MAX)
        .fetch_one(&self.pool)
        .await?;
        let Some(cut) = cut else {
            return Ok(0);
        };
        // The piles' rows by pile, through their key: the piles that have any, one step of
        // the key each (a pile removed from the registry too).
        let piles: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE listed(pile) AS ( \
                 SELECT MIN(pile) FROM message_block_piles \
                 UNION ALL SELECT (SELECT MIN(m.pile) FROM message_block_piles m \
                     WHERE m.pile > listed.pile) FROM listed WHERE listed.pile IS NOT NULL) \
             SELECT pile FROM listed WHERE pile IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        for chunk in piles.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                sqlx::QueryBuilder::<Db>::new("DELETE FROM message_block_piles WHERE block <= ");
            q.push_bind(cut).push(" AND pile IN (");
            let mut list = q.separated(", ");
            for pile in chunk {
                list.push_bind(pile.clone());
            }
            q.push(")");
            q.build().execute(&self.pool).await?;
        }
        sqlx::query("DELETE FROM message_blocks WHERE id <= $1")
            .bind(cut)
            .execute(&self.pool)
            .await?;
        Ok(frames.map_or(0, |n| n.max(0) as u64))
    }
}

/// The message log rows of a batch as one block (or a few, past `MAX_BLOCK_FRAMES`), with a row
/// per pile and block; the deviation rows in multi-row statements.
async fn insert_log(tx: &mut Tx, log: LogBatch<'_>) -> Result<(), sqlx::Error> {
    for frames in log.messages.chunks(MAX_BLOCK_FRAMES) {
        let (data, first) = super::log_block::encode(frames);
        let last = frames.iter().map(|m| m.time).max().unwrap_or(first);
        let block: i64 = sqlx::query_scalar(&format!(
            "INSERT INTO message_blocks (id, first_time, last_time, frames, data) \
             VALUES ({}, $1, $2, $3, $4) RETURNING id",
            next_id("message_blocks")
        ))
        .bind(first)
        .bind(last)
        .bind(frames.len() as i64)
        .bind(data)
        .fetch_one(&mut **tx)
        .await?;
        let mut piles: Vec<(&str, i64)> = frames
            .iter()
            .map(|m| (m.pile.as_str(), super::log_block::action_bit(m.action.as_deref())))
            .collect();
        piles.sort_unstable_by_key(|(pile, _)| *pile);
        piles.dedup_by(|(pile, actions), (kept, kept_actions)| {
            let same = pile == kept;
            if same {
                *kept_actions |= *actions;
            }
            same
        });
        for chunk in piles.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO message_block_piles (pile, block, actions) ",
            );
            q.push_values(chunk, |mut b, (pile, actions)| {
                b.push_bind(pile.to_string())
                    .push_bind(block)
                    .push_bind(*actions);
            });
            q.build().execute(&mut **tx).await?;
        }
    }
    for chunk in log.deviations.chunks(500) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO deviations (pile, time, action, kind, detail) ",
        );
        q.push_values(chunk, |mut b, d| {
            b.push_bind(d.pile.clone())
                .push_bind(d.time)
                .push_bind(d.action.clone())
                .push_bind(d.kind.clone())
                .push_bind(d.detail.clone());
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
