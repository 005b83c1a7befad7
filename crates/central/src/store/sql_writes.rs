// The writes of the repository (one `WriteOp` at a time, inside the batch's database
// transaction), written once over `Db` and included beside `sql_body.rs` by the SQLite and the
// PostgreSQL module.

async fn find_id_tag(tx: &mut Tx, tag: &str) -> Result<Option<IdTagRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id_tag, status, expiry_date, parent_id_tag FROM id_tags WHERE id_tag = $1",
    )
    .bind(tag)
    .fetch_optional(&mut **tx)
    .await
}

/// Rows per multi-row statement: well under the bind-parameter limit of either database.
const ROWS_PER_STATEMENT: usize = 400;

/// One meter value row to insert.
struct SampleRow<'a> {
    pile: &'a str,
    connector: i64,
    transaction_id: Option<i64>,
    sample: &'a MeterSample,
}

/// The meter value rows of a batch's MeterValues, inserted after its other writes (nothing in
/// a batch reads them).
fn batch_samples(ops: &[WriteOp]) -> Vec<SampleRow<'_>> {
    let mut rows = Vec::new();
    for op in ops {
        if let WriteOp::MeterValues {
            pile,
            connector,
            transaction_id,
            samples,
        } = op
        {
            rows.extend(samples.iter().map(|sample| SampleRow {
                pile,
                connector: *connector,
                transaction_id: *transaction_id,
                sample,
            }));
        }
    }
    rows
}

async fn insert_samples(tx: &mut Tx, rows: &[SampleRow<'_>]) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO meter_values (pile, connector, transaction_id, time, digest, sampled) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.pile.to_owned())
                .push_bind(r.connector)
                .push_bind(r.transaction_id)
                .push_bind(r.sample.time)
                .push_bind(digest(&r.sample.sampled))
                .push_bind(super::samples::pack(&r.sample.sampled));
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Sets `last_seen` of the piles a batch heard from, a few hundred per statement.
async fn touch(tx: &mut Tx, piles: &[&str], now: Millis) -> Result<(), sqlx::Error> {
    for chunk in piles.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new("UPDATE piles SET last_seen = ");
        q.push_bind(now).push(" WHERE id IN (");
        let mut ids = q.separated(", ");
        for id in chunk {
            ids.push_bind((*id).to_owned());
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Stores the keys a GetConfiguration read, and each changed value in the history: one read of
/// the pile's stored keys, then multi-row statements.
async fn store_configuration(
    tx: &mut Tx,
    pile: &str,
    keys: &[(String, Option<String>, bool)],
    now: Millis,
) -> Result<(), sqlx::Error> {
    let stored: std::collections::HashMap<String, Option<String>> =
        sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT key, value FROM configuration WHERE pile = $1",
        )
        .bind(pile)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    // A key answered twice counts once, as its last answer.
    let mut latest: Vec<&(String, Option<String>, bool)> = Vec::with_capacity(keys.len());
    for kv in keys.iter().rev() {
        if !latest.iter().any(|k| k.0 == kv.0) {
            latest.push(kv);
        }
    }
    latest.reverse();
    let changed: Vec<(&str, Option<&str>, Option<&str>)> = latest
        .iter()
        .filter_map(|(key, value, _)| match stored.get(key) {
            Some(old) if old == value => None,
            old => Some((
                key.as_str(),
                old.and_then(|o| o.as_deref()),
                value.as_deref(),
            )),
        })
        .collect();
    for chunk in changed.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO configuration_history (pile, key, time, old_value, new_value) ",
        );
        q.push_values(chunk, |mut b, (key, old, new)| {
            b.push_bind(pile.to_owned())
                .push_bind((*key).to_owned())
                .push_bind(now)
                .push_bind(old.map(str::to_owned))
                .push_bind(new.map(str::to_owned));
        });
        q.build().execute(&mut **tx).await?;
    }
    for chunk in latest.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO configuration (pile, key, value, readonly, read_at) ",
        );
        q.push_values(chunk, |mut b, (key, value, readonly)| {
            b.push_bind(pile.to_owned())
                .push_bind(key.clone())
                .push_bind(value.clone())
                .push_bind(flag(*readonly))
                .push_bind(now);
        });
        q.push(
            " ON CONFLICT (pile, key) DO UPDATE SET value = excluded.value, \
             readonly = excluded.readonly, read_at = excluded.read_at",
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn apply_one(tx: &mut Tx, op: &WriteOp, now: Millis) -> Result<WriteResult, sqlx::Error> {
    match op {
        WriteOp::RegisterPile {
            id,
            password_hash,
            security_profile,
        } => {
            sqlx::query(
                "INSERT INTO piles (id, password_hash, registration, created_at, security_profile) \
                 VALUES ($1, $2, 'Accepted', $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, \
                 registration = 'Accepted', security_profile = excluded.security_profile, \
                 previous_password_hash = NULL",
            )
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .bind(security_profile)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Done)
        }
        WriteOp::AdmitPile { .. } => {
            let mut result = [WriteResult::Done];
            admit_piles(tx, &[(0, op)], now, &mut result).await?;
            let [result] = result;
            Ok(result)
        }
        WriteOp::SetRegistration { id, registration } => {
            let r = sqlx::query("UPDATE piles SET registration = $1 WHERE id = $2")
                .bind(registration)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(WriteResult::Affected(r.rows_affected()))
        }
        WriteOp::DeletePile { id } => {
            for table in ["connectors", "configuration"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE pile = $1"))
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            let r = sqlx::query("DELETE FROM piles WHERE id = $1")
                .bind(id)
                .execute(&mut **tx)
                .await?;
            Ok(WriteResult::Affected(r.rows_affected()))
        }
        WriteOp::Boot { .. } | WriteOp::Status { .. } | WriteOp::Connected { .. } => {
            apply_after(tx, &[op], now).await?;
            Ok(WriteResult::Done)
        }
        // Its `last_seen` is set with the batch's other piles (`WriteOp::seen_pile`).
        WriteOp::Seen { .. } => Ok(WriteResult::Done),
        WriteOp::StartTransaction {
            pile,
            connector,
            id_tag,
            meter_start,
            reservation_id,
            time,
        } => {
            let tag = find_id_tag(tx, id_tag).await?;
            let start = Start {
                pile,
                connector: *connector,
                id_tag,
                meter_start: *meter_start,
                reservation_id: *reservation_id,
                time: *time,
            };
            let transaction_id = start_transaction(tx, &start).await?;
            Ok(WriteResult::Started {
                transaction_id,
                id_tag: tag,
            })
        }
        WriteOp::StopTransaction {
            pile,
            transaction_id,
            id_tag,
            meter_stop,
            time,
            reason,
            data,
        } => {
            let tag = match id_tag {
                Some(t) => find_id_tag(tx, t).await?,
                None => None,
            };
            let stop = Stop {
                pile,
                transaction_id: *transaction_id,
                id_tag: id_tag.as_deref(),
                meter_stop: *meter_stop,
                time: *time,
                reason: reason.as_deref(),
            };
            let connector = stop_transaction(tx, &stop).await?;
            let rows: Vec<SampleRow> = data
                .iter()
                .map(|sample| SampleRow {
                    pile,
                    connector: connector.unwrap_or(0),
                    transaction_id: Some(*transaction_id),
                    sample,
                })
                .collect();
            insert_samples(tx, &rows).await?;
            Ok(WriteResult::Stopped { id_tag: tag })
        }
        // Its rows are inserted with the batch's others (`batch_samples`).
        WriteOp::MeterValues { .. } => Ok(WriteResult::Done),
        WriteOp::Event {
            pile,
            kind,
            detail,
            firmware_status,
            diagnostics_status,
        } => {
            sqlx::query(
                "INSERT INTO pile_events (pile, time, kind, detail) VALUES ($1, $2, $3, $4)",
            )
            .bind(pile)
            .bind(now)
            .bind(kind)
            .bind(detail)
            .execute(&mut **tx)
            .await?;
            if let Some(status) = firmware_status {
                sqlx::query("UPDATE piles SET firmware_status = $1 WHERE id = $2")
                    .bind(status)
                    .bind(pile)
                    .execute(&mut **tx)
                    .await?;
            }
            if let Some(status) = diagnostics_status {
                sqlx::query("UPDATE piles SET diagnostics_status = $1 WHERE id = $2")
                    .bind(status)
                    .bind(pile)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(WriteResult::Done)
        }
        WriteOp::Configuration { pile, keys } => {
            store_configuration(tx, pile, keys, now).await?;
            Ok(WriteResult::Done)
        }
        WriteOp::PutIdTag(tag) => {
            sqlx::query(
                "INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (id_tag) DO UPDATE SET \
                 status = excluded.status, expiry_date = excluded.expiry_date, \
                 parent_id_tag = excluded.parent_id_tag",
            )
            .bind(&tag.id_tag)
            .bind(&tag.status)
            .bind(tag.expiry_date)
            .bind(&tag.parent_id_tag)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Done)
        }
        WriteOp::DeleteIdTag { id_tag } => {
            let r = sqlx::query("DELETE FROM id_tags WHERE id_tag = $1")
                .bind(id_tag)
                .execute(&mut **tx)
                .await?;
            Ok(WriteResult::Affected(r.rows_affected()))
        }
        WriteOp::CommandSent {
            pile,
            action,
            payload,
        } => {
            let id: i64 = sqlx::query_scalar(&format!(
                "INSERT INTO commands (id, pile, action, payload, sent_at) \
                 VALUES ({}, $1, $2, $3, $4) RETURNING id",
                next_id("commands")
            ))
            .bind(pile)
            .bind(action)
            .bind(payload)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            Ok(WriteResult::Command(id))
        }
        WriteOp::CommandDone {
            id,
            outcome,
            result,
        } => {
            sqlx::query(
                "UPDATE commands SET answered_at = $1, outcome = $2, result = $3 WHERE id = $4",
            )
            .bind(now)
            .bind(outcome)
            .bind(result)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Done)
        }
        WriteOp::CampaignState { .. }
        | WriteOp::PutRollout { .. }
        | WriteOp::CancelCampaign { .. } => apply_firmware(tx, op, now).await,
        WriteOp::SetSecurity { .. }
        | WriteOp::ConnectedAtProfile { .. }
        | WriteOp::PasswordRotated { .. }
        | WriteOp::PasswordRotationUndone { .. } => apply_security(tx, op).await,
        WriteOp::Disconnected {
            pile,
            node,
            connection,
        } => disconnect(tx, pile, node, *connection).await,
        WriteOp::Refused(r) => {
            sqlx::query(
                "INSERT INTO refused_handshakes (time, remote, identity, reason, http_status) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(r.time)
            .bind(&r.remote)
            .bind(&r.identity)
            .bind(&r.reason)
            .bind(r.http_status)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Done)
        }
    }
}
