// The charging transactions' writes, safe with many nodes writing at once: the constraints
// decide (the unique index on a start's content, the conditional stop), never a read before a
// write. Included beside `sql_writes.rs` by the SQLite and the PostgreSQL module.

/// A StartTransaction's content.
struct Start<'a> {
    pile: &'a str,
    connector: i64,
    id_tag: &'a str,
    meter_start: i64,
    reservation_id: Option<i64>,
    time: Millis,
}

/// A StopTransaction's content.
struct Stop<'a> {
    pile: &'a str,
    transaction_id: i64,
    id_tag: Option<&'a str>,
    meter_stop: i64,
    time: Millis,
    reason: Option<&'a str>,
}

/// How many taken ids a start skips before it gives up (each is a transaction a pile
/// invented, reconciled at its stop, where the sequence was to come).
const MAX_TAKEN_IDS: usize = 1000;

/// The transaction of a start: a new one, or the one with its content (the same start sent
/// again, under its id or a new one, through any node). The unique index on the content
/// decides: a node inserting the same content at the same time waits for the other's commit
/// and then reads its row.
async fn start_transaction(tx: &mut Tx, start: &Start<'_>) -> Result<i64, sqlx::Error> {
    let insert = format!(
        "INSERT INTO transactions (id, pile, connector, id_tag, start_time, meter_start, \
         reservation_id, reconciled) VALUES ({}, $1, $2, $3, $4, $5, $6, 0) \
         ON CONFLICT DO NOTHING RETURNING id",
        next_id("transactions")
    );
    for _ in 0..MAX_TAKEN_IDS {
        let inserted: Option<i64> = sqlx::query_scalar(&insert)
            .bind(start.pile)
            .bind(start.connector)
            .bind(start.id_tag)
            .bind(start.time)
            .bind(start.meter_start)
            .bind(start.reservation_id)
            .fetch_optional(&mut **tx)
            .await?;
        if let Some(id) = inserted {
            return Ok(id);
        }
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM transactions WHERE pile = $1 AND connector = $2 AND start_time = $3 \
             AND meter_start = $4 AND id_tag = $5",
        )
        .bind(start.pile)
        .bind(start.connector)
        .bind(start.time)
        .bind(start.meter_start)
        .bind(start.id_tag)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(id) = existing {
            return Ok(id);
        }
        // No row holds this content: the id was taken by a reconciled transaction; the next.
    }
    Err(sqlx::Error::Protocol(format!(
        "no free transaction id after {MAX_TAKEN_IDS} taken ones"
    )))
}

/// Stops a transaction once: the first stop sets it, a repetition (through any node) changes
/// nothing; a stop of a transaction the central never saw is kept once, reconciled. Answers
/// the transaction's connector (none for a reconciled one).
async fn stop_transaction(tx: &mut Tx, stop: &Stop<'_>) -> Result<Option<i64>, sqlx::Error> {
    // Twice: a row another node was inserting under this id is there the second time.
    for _ in 0..2 {
        let stopped: Option<Option<i64>> = sqlx::query_scalar(
            "UPDATE transactions SET stop_time = $1, meter_stop = $2, stop_id_tag = $3, \
             reason = $4 WHERE id = $5 AND stop_time IS NULL RETURNING connector",
        )
        .bind(stop.time)
        .bind(stop.meter_stop)
        .bind(stop.id_tag)
        .bind(stop.reason)
        .bind(stop.transaction_id)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(connector) = stopped {
            return Ok(connector);
        }
        let reconciled = sqlx::query(
            "INSERT INTO transactions (id, pile, id_tag, stop_time, meter_stop, stop_id_tag, \
             reason, reconciled) VALUES ($1, $2, $3, $4, $5, $3, $6, 1) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(stop.transaction_id)
        .bind(stop.pile)
        .bind(stop.id_tag)
        .bind(stop.time)
        .bind(stop.meter_stop)
        .bind(stop.reason)
        .execute(&mut **tx)
        .await?;
        if reconciled.rows_affected() == 1 {
            if let Some(advance) = ADVANCE_TRANSACTION_IDS {
                sqlx::query(advance)
                    .bind(stop.transaction_id)
                    .execute(&mut **tx)
                    .await?;
            }
            return Ok(None);
        }
        let stopped_already: Option<(Option<i64>, Option<Millis>)> =
            sqlx::query_as("SELECT connector, stop_time FROM transactions WHERE id = $1")
                .bind(stop.transaction_id)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some((connector, Some(_))) = stopped_already {
            return Ok(connector);
        }
    }
    Err(sqlx::Error::Protocol(format!(
        "transaction {} neither stops nor is stored",
        stop.transaction_id
    )))
}
