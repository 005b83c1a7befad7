// The fleet's reads and writes on sqlx (the paged, filtered pile list, the fleet's tallies, who
// is online, a running transaction's last register reading): included by the SQLite and the
// PostgreSQL module after `sql_body.rs` (the same portable SQL for both).

/// Connectors that count as faulted: Faulted, or an errorCode other than NoError.
const FAULTED_PILES: &str =
    "SELECT pile FROM connectors WHERE status = 'Faulted' OR error_code <> 'NoError'";

/// The columns `filter` looks at in the text search.
const SEARCHED: [&str; 5] = ["id", "vendor", "model", "serial_number", "firmware_version"];

/// A LIKE pattern that finds `text` anywhere, lowercased, with `%`, `_` and `\` escaped.
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Appends the filter's conditions (` AND ...`) to a query on `piles`.
fn push_pile_filter(q: &mut sqlx::QueryBuilder<'_, Db>, f: &PileFilter) {
    if let Some(status) = &f.status {
        q.push(" AND id IN (SELECT pile FROM connectors WHERE status = ")
            .push_bind(status.clone())
            .push(")");
    }
    if let Some(registration) = &f.registration {
        q.push(" AND registration = ").push_bind(registration.clone());
    }
    if let Some(model) = &f.model {
        q.push(" AND model = ").push_bind(model.clone());
    }
    if let Some(firmware) = &f.firmware {
        q.push(" AND firmware_version = ")
            .push_bind(firmware.clone());
    }
    match f.online {
        Some(true) => {
            q.push(" AND connection IS NOT NULL");
        }
        Some(false) => {
            q.push(" AND connection IS NULL");
        }
        None => {}
    }
    match f.faulted {
        Some(true) => {
            q.push(format!(" AND id IN ({FAULTED_PILES})"));
        }
        Some(false) => {
            q.push(format!(" AND id NOT IN ({FAULTED_PILES})"));
        }
        None => {}
    }
    if let Some(text) = &f.text {
        let pattern = contains_pattern(text);
        q.push(" AND (");
        for (i, column) in SEARCHED.iter().enumerate() {
            if i > 0 {
                q.push(" OR ");
            }
            q.push(format!("LOWER({column}) LIKE "))
                .push_bind(pattern.clone())
                .push(" ESCAPE '\\'");
        }
        q.push(")");
    }
}

async fn tallies(pool: &sqlx::Pool<Db>, sql: &str) -> Result<Vec<Tally>, sqlx::Error> {
    sqlx::query_as::<_, Tally>(sql).fetch_all(pool).await
}

async fn count(pool: &sqlx::Pool<Db>, sql: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await
}

impl SqlRepository {
    async fn read_pile_page(
        &self,
        filter: &PileFilter,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> Result<Vec<PileRow>, StoreError> {
        let mut q =
            sqlx::QueryBuilder::<Db>::new(format!("SELECT {PILE_COLUMNS} FROM piles WHERE 1 = 1"));
        push_pile_filter(&mut q, filter);
        if let Some(after) = after {
            q.push(" AND id > ").push_bind(after.to_owned());
        }
        q.push(" ORDER BY id");
        if let Some(limit) = limit {
            q.push(" LIMIT ").push_bind(limit);
        }
        Ok(q.build_query_as::<PileRow>().fetch_all(&self.pool).await?)
    }

    async fn read_piles_of(&self, ids: &[String]) -> Result<Vec<PileRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<Db>::new(format!(
                "SELECT {PILE_COLUMNS} FROM piles WHERE id IN ("
            ));
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id.clone());
            }
            q.push(") ORDER BY id");
            rows.extend(q.build_query_as::<PileRow>().fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    async fn read_connectors_of(&self, piles: &[String]) -> Result<Vec<ConnectorRow>, StoreError> {
        let mut rows = Vec::new();
        for chunk in piles.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "SELECT pile, connector, status, error_code, vendor_error_code, info, time \
                 FROM connectors WHERE pile IN (",
            );
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(id.clone());
            }
            q.push(") ORDER BY pile, connector");
            rows.extend(q.build_query_as::<ConnectorRow>().fetch_all(&self.pool).await?);
        }
        Ok(rows)
    }

    async fn read_fleet_counts(&self, since: Millis) -> Result<FleetCounts, StoreError> {
        let pool = &self.pool;
        let energy_wh = sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(CASE WHEN stop_time IS NULL THEN meter_last - meter_start \
             ELSE meter_stop - meter_start END), 0) AS BIGINT) FROM transactions \
             WHERE stop_time >= $1 OR (stop_time IS NULL AND meter_last IS NOT NULL)",
        )
        .bind(since)
        .fetch_one(pool)
        .await?;
        Ok(FleetCounts {
            piles: count(pool, "SELECT COUNT(*) FROM piles").await?,
            online: count(
                pool,
                "SELECT COUNT(*) FROM piles WHERE connection IS NOT NULL",
            )
            .await?,
            registration: tallies(
                pool,
                "SELECT registration AS name, COUNT(*) AS count FROM piles \
                 GROUP BY registration ORDER BY registration",
            )
            .await?,
            models: tallies(
                pool,
                "SELECT model AS name, COUNT(*) AS count FROM piles WHERE model IS NOT NULL \
                 GROUP BY model ORDER BY model",
            )
            .await?,
            firmware: tallies(
                pool,
                "SELECT firmware_version AS name, COUNT(*) AS count FROM piles \
                 WHERE firmware_version IS NOT NULL GROUP BY firmware_version \
                 ORDER BY firmware_version",
            )
            .await?,
            connector_status: tallies(
                pool,
                "SELECT status AS name, COUNT(*) AS count FROM connectors \
                 GROUP BY status ORDER BY status",
            )
            .await?,
            error_codes: tallies(
                pool,
                "SELECT error_code AS name, COUNT(*) AS count FROM connectors \
                 WHERE error_code <> 'NoError' GROUP BY error_code ORDER BY error_code",
            )
            .await?,
            vendor_error_codes: tallies(
                pool,
                "SELECT vendor_error_code AS name, COUNT(*) AS count FROM connectors \
                 WHERE vendor_error_code IS NOT NULL AND vendor_error_code <> '' \
                 GROUP BY vendor_error_code ORDER BY vendor_error_code",
            )
            .await?,
            running_transactions: count(
                pool,
                "SELECT COUNT(*) FROM transactions WHERE stop_time IS NULL",
            )
            .await?,
            energy_wh,
        })
    }
}

/// A pile's connection ended: its presence record goes, unless a newer connection replaced it.
async fn disconnect(
    tx: &mut Tx,
    pile: &str,
    node: &str,
    connection: i64,
) -> Result<WriteResult, sqlx::Error> {
    sqlx::query(
        "UPDATE piles SET connection = NULL, node = NULL, connected_at = NULL \
         WHERE id = $1 AND connection = $2 AND node = $3",
    )
    .bind(pile)
    .bind(connection)
    .bind(node)
    .execute(&mut **tx)
    .await?;
    Ok(WriteResult::Done)
}

/// Keeps the latest Energy.Active.Import.Register reading of each running transaction a
/// batch's MeterValues report (an older reading that arrives late changes nothing).
async fn note_registers(tx: &mut Tx, ops: &[WriteOp]) -> Result<(), sqlx::Error> {
    let mut latest: Vec<(i64, Millis, i64)> = Vec::new();
    for op in ops {
        let WriteOp::MeterValues {
            transaction_id: Some(id),
            samples,
            ..
        } = op
        else {
            continue;
        };
        let Some((time, wh)) = super::fleet::last_register(samples) else {
            continue;
        };
        match latest.iter_mut().find(|(t, _, _)| t == id) {
            Some(entry) if entry.1 <= time => *entry = (*id, time, wh),
            Some(_) => {}
            None => latest.push((*id, time, wh)),
        }
    }
    for (id, time, wh) in latest {
        sqlx::query(
            "UPDATE transactions SET meter_last = $1, meter_last_time = $2 \
             WHERE id = $3 AND stop_time IS NULL \
             AND (meter_last_time IS NULL OR meter_last_time <= $2)",
        )
        .bind(wh)
        .bind(time)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
