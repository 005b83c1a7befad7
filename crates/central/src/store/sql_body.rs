// The repository on sqlx, written once over the database type `Db` and included by the SQLite
// and the PostgreSQL module: the SQL is portable, so both run the same statements.

use async_trait::async_trait;
use sqlx::Row;

use super::model::*;
use super::{Repository, StoreError};

type Tx = sqlx::Transaction<'static, Db>;
type DbRow = <Db as sqlx::Database>::Row;

/// The repository on one pool.
pub struct SqlRepository {
    pool: sqlx::Pool<Db>,
}

impl SqlRepository {
    pub fn new(pool: sqlx::Pool<Db>) -> Self {
        SqlRepository { pool }
    }

    pub fn pool(&self) -> &sqlx::Pool<Db> {
        &self.pool
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))
    }
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn pile_row(r: &DbRow) -> Result<PileRow, sqlx::Error> {
    Ok(PileRow {
        id: r.try_get("id")?,
        password_hash: r.try_get("password_hash")?,
        registration: r.try_get("registration")?,
        vendor: r.try_get("vendor")?,
        model: r.try_get("model")?,
        serial_number: r.try_get("serial_number")?,
        charge_box_serial_number: r.try_get("charge_box_serial_number")?,
        firmware_version: r.try_get("firmware_version")?,
        iccid: r.try_get("iccid")?,
        imsi: r.try_get("imsi")?,
        meter_type: r.try_get("meter_type")?,
        meter_serial_number: r.try_get("meter_serial_number")?,
        firmware_status: r.try_get("firmware_status")?,
        diagnostics_status: r.try_get("diagnostics_status")?,
        created_at: r.try_get("created_at")?,
        last_boot: r.try_get("last_boot")?,
        last_seen: r.try_get("last_seen")?,
    })
}

fn connector_row(r: &DbRow) -> Result<ConnectorRow, sqlx::Error> {
    Ok(ConnectorRow {
        pile: r.try_get("pile")?,
        connector: r.try_get("connector")?,
        status: r.try_get("status")?,
        error_code: r.try_get("error_code")?,
        vendor_error_code: r.try_get("vendor_error_code")?,
        info: r.try_get("info")?,
        time: r.try_get("time")?,
    })
}

fn transaction_row(r: &DbRow) -> Result<TransactionRow, sqlx::Error> {
    Ok(TransactionRow {
        id: r.try_get("id")?,
        pile: r.try_get("pile")?,
        connector: r.try_get("connector")?,
        id_tag: r.try_get("id_tag")?,
        start: r.try_get("start_time")?,
        meter_start: r.try_get("meter_start")?,
        reservation_id: r.try_get("reservation_id")?,
        stop: r.try_get("stop_time")?,
        meter_stop: r.try_get("meter_stop")?,
        stop_id_tag: r.try_get("stop_id_tag")?,
        reason: r.try_get("reason")?,
        reconciled: r.try_get::<i64, _>("reconciled")? != 0,
    })
}

fn id_tag_row(r: &DbRow) -> Result<IdTagRow, sqlx::Error> {
    Ok(IdTagRow {
        id_tag: r.try_get("id_tag")?,
        status: r.try_get("status")?,
        expiry_date: r.try_get("expiry_date")?,
        parent_id_tag: r.try_get("parent_id_tag")?,
    })
}

const PILE_COLUMNS: &str = "id, password_hash, registration, vendor, model, serial_number, \
    charge_box_serial_number, firmware_version, iccid, imsi, meter_type, meter_serial_number, \
    firmware_status, diagnostics_status, created_at, last_boot, last_seen";
const TRANSACTION_COLUMNS: &str = "id, pile, connector, id_tag, start_time, meter_start, \
    reservation_id, stop_time, meter_stop, stop_id_tag, reason, reconciled";

async fn find_id_tag(tx: &mut Tx, tag: &str) -> Result<Option<IdTagRow>, sqlx::Error> {
    sqlx::query("SELECT id_tag, status, expiry_date, parent_id_tag FROM id_tags WHERE id_tag = $1")
        .bind(tag)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| id_tag_row(&r))
        .transpose()
}

async fn insert_samples(
    tx: &mut Tx,
    pile: &str,
    connector: i64,
    transaction_id: Option<i64>,
    samples: &[MeterSample],
) -> Result<(), sqlx::Error> {
    for s in samples {
        sqlx::query(
            "INSERT INTO meter_values (pile, connector, transaction_id, time, digest, sampled) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(pile)
        .bind(connector)
        .bind(transaction_id)
        .bind(s.time)
        .bind(digest(&s.sampled))
        .bind(&s.sampled)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn touch(tx: &mut Tx, pile: &str, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE piles SET last_seen = $1 WHERE id = $2")
        .bind(now)
        .bind(pile)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn apply_one(tx: &mut Tx, op: &WriteOp, now: Millis) -> Result<WriteResult, sqlx::Error> {
    match op {
        WriteOp::RegisterPile { id, password_hash } => {
            sqlx::query(
                "INSERT INTO piles (id, password_hash, registration, created_at) \
                 VALUES ($1, $2, 'Accepted', $3) \
                 ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, \
                 registration = 'Accepted'",
            )
            .bind(id)
            .bind(password_hash)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Done)
        }
        WriteOp::AdmitPile { id, registration } => {
            let r = sqlx::query(
                "INSERT INTO piles (id, registration, created_at, last_seen) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(registration)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Affected(r.rows_affected()))
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
        WriteOp::Boot { pile, info } => {
            sqlx::query(
                "UPDATE piles SET vendor = $1, model = $2, serial_number = $3, \
                 charge_box_serial_number = $4, firmware_version = $5, iccid = $6, imsi = $7, \
                 meter_type = $8, meter_serial_number = $9, last_boot = $10, last_seen = $10 \
                 WHERE id = $11",
            )
            .bind(&info.vendor)
            .bind(&info.model)
            .bind(&info.serial_number)
            .bind(&info.charge_box_serial_number)
            .bind(&info.firmware_version)
            .bind(&info.iccid)
            .bind(&info.imsi)
            .bind(&info.meter_type)
            .bind(&info.meter_serial_number)
            .bind(now)
            .bind(pile)
            .execute(&mut **tx)
            .await?;
            Ok(WriteResult::Done)
        }
        WriteOp::Seen { pile } => {
            touch(tx, pile, now).await?;
            Ok(WriteResult::Done)
        }
        WriteOp::Status {
            pile,
            connector,
            status,
            error_code,
            vendor_error_code,
            info,
            vendor_id,
            time,
        } => {
            sqlx::query(
                "INSERT INTO connectors (pile, connector, status, error_code, vendor_error_code, \
                 info, vendor_id, time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (pile, connector) DO UPDATE SET status = excluded.status, \
                 error_code = excluded.error_code, vendor_error_code = excluded.vendor_error_code, \
                 info = excluded.info, vendor_id = excluded.vendor_id, time = excluded.time \
                 WHERE connectors.time <= excluded.time",
            )
            .bind(pile)
            .bind(connector)
            .bind(status)
            .bind(error_code)
            .bind(vendor_error_code)
            .bind(info)
            .bind(vendor_id)
            .bind(time)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO status_history (pile, connector, time, status, error_code, \
                 vendor_error_code, info) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(pile)
            .bind(connector)
            .bind(time)
            .bind(status)
            .bind(error_code)
            .bind(vendor_error_code)
            .bind(info)
            .execute(&mut **tx)
            .await?;
            touch(tx, pile, now).await?;
            Ok(WriteResult::Done)
        }
        WriteOp::StartTransaction {
            pile,
            connector,
            id_tag,
            meter_start,
            reservation_id,
            time,
        } => {
            touch(tx, pile, now).await?;
            let tag = find_id_tag(tx, id_tag).await?;
            // The same start sent again (under its id or a new one) is the same transaction.
            let existing: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM transactions WHERE pile = $1 AND connector = $2 AND start_time = $3 \
                 AND meter_start = $4 AND id_tag = $5",
            )
            .bind(pile)
            .bind(connector)
            .bind(time)
            .bind(meter_start)
            .bind(id_tag)
            .fetch_optional(&mut **tx)
            .await?;
            let transaction_id = match existing {
                Some(id) => id,
                None => {
                    let id: i64 =
                        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM transactions")
                            .fetch_one(&mut **tx)
                            .await?;
                    sqlx::query(
                        "INSERT INTO transactions (id, pile, connector, id_tag, start_time, \
                         meter_start, reservation_id, reconciled) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
                    )
                    .bind(id)
                    .bind(pile)
                    .bind(connector)
                    .bind(id_tag)
                    .bind(time)
                    .bind(meter_start)
                    .bind(reservation_id)
                    .execute(&mut **tx)
                    .await?;
                    id
                }
            };
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
            touch(tx, pile, now).await?;
            let tag = match id_tag {
                Some(t) => find_id_tag(tx, t).await?,
                None => None,
            };
            let known: Option<(String, Option<i64>, Option<i64>)> =
                sqlx::query("SELECT pile, stop_time, connector FROM transactions WHERE id = $1")
                    .bind(transaction_id)
                    .fetch_optional(&mut **tx)
                    .await?
                    .map(|r| -> Result<_, sqlx::Error> {
                        Ok((
                            r.try_get("pile")?,
                            r.try_get("stop_time")?,
                            r.try_get("connector")?,
                        ))
                    })
                    .transpose()?;
            let connector = match known {
                // Stopped already: a repetition changes nothing.
                Some((_, Some(_), connector)) => connector,
                Some((_, None, connector)) => {
                    sqlx::query(
                        "UPDATE transactions SET stop_time = $1, meter_stop = $2, \
                         stop_id_tag = $3, reason = $4 WHERE id = $5",
                    )
                    .bind(time)
                    .bind(meter_stop)
                    .bind(id_tag)
                    .bind(reason)
                    .bind(transaction_id)
                    .execute(&mut **tx)
                    .await?;
                    connector
                }
                None => {
                    // A transaction whose start the central never saw: kept, reconciled.
                    sqlx::query(
                        "INSERT INTO transactions (id, pile, id_tag, stop_time, meter_stop, \
                         stop_id_tag, reason, reconciled) VALUES ($1, $2, $3, $4, $5, $3, $6, 1)",
                    )
                    .bind(transaction_id)
                    .bind(pile)
                    .bind(id_tag)
                    .bind(time)
                    .bind(meter_stop)
                    .bind(reason)
                    .execute(&mut **tx)
                    .await?;
                    None
                }
            };
            insert_samples(
                tx,
                pile,
                connector.unwrap_or(0),
                Some(*transaction_id),
                data,
            )
            .await?;
            Ok(WriteResult::Stopped { id_tag: tag })
        }
        WriteOp::MeterValues {
            pile,
            connector,
            transaction_id,
            samples,
        } => {
            touch(tx, pile, now).await?;
            insert_samples(tx, pile, *connector, *transaction_id, samples).await?;
            Ok(WriteResult::Done)
        }
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
            for (key, value, readonly) in keys {
                let old: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT value FROM configuration WHERE pile = $1 AND key = $2",
                )
                .bind(pile)
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?;
                if old.as_ref() != Some(value) {
                    sqlx::query(
                        "INSERT INTO configuration_history (pile, key, time, old_value, new_value) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(pile)
                    .bind(key)
                    .bind(now)
                    .bind(old.flatten())
                    .bind(value)
                    .execute(&mut **tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO configuration (pile, key, value, readonly, read_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pile, key) DO UPDATE SET \
                     value = excluded.value, readonly = excluded.readonly, read_at = excluded.read_at",
                )
                .bind(pile)
                .bind(key)
                .bind(value)
                .bind(flag(*readonly))
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
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
            let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM commands")
                .fetch_one(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO commands (id, pile, action, payload, sent_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id)
            .bind(pile)
            .bind(action)
            .bind(payload)
            .bind(now)
            .execute(&mut **tx)
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

#[async_trait]
impl Repository for SqlRepository {
    async fn apply(&self, ops: &[WriteOp], now: Millis) -> Result<Vec<WriteResult>, StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(apply_one(&mut tx, op, now).await?);
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn append_log(
        &self,
        messages: &[LogRow],
        deviations: &[DeviationRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with(BEGIN).await?;
        for chunk in messages.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO message_log (pile, time, seq, direction, action, message_id, frame) ",
            );
            q.push_values(chunk, |mut b, m| {
                b.push_bind(m.pile.clone())
                    .push_bind(m.time)
                    .push_bind(m.seq)
                    .push_bind(m.direction)
                    .push_bind(m.action.clone())
                    .push_bind(m.message_id.clone())
                    .push_bind(m.frame.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in deviations.chunks(500) {
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
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
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
        Ok(deleted)
    }

    async fn max_log_seq(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM message_log")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn pile(&self, id: &str) -> Result<Option<PileRow>, StoreError> {
        let q = format!("SELECT {PILE_COLUMNS} FROM piles WHERE id = $1");
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| pile_row(&r)).transpose()?)
    }

    async fn piles(&self) -> Result<Vec<PileRow>, StoreError> {
        let q = format!("SELECT {PILE_COLUMNS} FROM piles ORDER BY id");
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(pile_row).collect::<Result<_, _>>()?)
    }

    async fn connectors(&self, pile: Option<&str>) -> Result<Vec<ConnectorRow>, StoreError> {
        let base = "SELECT pile, connector, status, error_code, vendor_error_code, info, time \
                    FROM connectors";
        let rows = match pile {
            Some(p) => {
                sqlx::query(&format!("{base} WHERE pile = $1 ORDER BY connector"))
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{base} ORDER BY pile, connector"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows.iter().map(connector_row).collect::<Result<_, _>>()?)
    }

    async fn status_history(
        &self,
        pile: &str,
        limit: i64,
    ) -> Result<Vec<ConnectorRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT pile, connector, status, error_code, vendor_error_code, info, time \
             FROM status_history WHERE pile = $1 ORDER BY time DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(connector_row).collect::<Result<_, _>>()?)
    }

    async fn id_tag(&self, tag: &str) -> Result<Option<IdTagRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id_tag, status, expiry_date, parent_id_tag FROM id_tags WHERE id_tag = $1",
        )
        .bind(tag)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| id_tag_row(&r)).transpose()?)
    }

    async fn id_tags(&self) -> Result<Vec<IdTagRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id_tag, status, expiry_date, parent_id_tag FROM id_tags ORDER BY id_tag",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(id_tag_row).collect::<Result<_, _>>()?)
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
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(transaction_row).collect::<Result<_, _>>()?)
    }

    async fn transaction(&self, id: i64) -> Result<Option<TransactionRow>, StoreError> {
        let q = format!("SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE id = $1");
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| transaction_row(&r)).transpose()?)
    }

    async fn meter_values(&self, transaction_id: i64) -> Result<Vec<MeterValueRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT pile, connector, transaction_id, time, sampled FROM meter_values \
             WHERE transaction_id = $1 ORDER BY time",
        )
        .bind(transaction_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MeterValueRow {
                    pile: r.try_get("pile")?,
                    connector: r.try_get("connector")?,
                    transaction_id: r.try_get("transaction_id")?,
                    time: r.try_get("time")?,
                    sampled: r.try_get("sampled")?,
                })
            })
            .collect()
    }

    async fn configuration(&self, pile: &str) -> Result<Vec<ConfigRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, value, readonly, read_at FROM configuration WHERE pile = $1 ORDER BY key",
        )
        .bind(pile)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigRow {
                    key: r.try_get("key")?,
                    value: r.try_get("value")?,
                    readonly: r.try_get::<i64, _>("readonly")? != 0,
                    read_at: r.try_get("read_at")?,
                })
            })
            .collect()
    }

    async fn configuration_history(&self, pile: &str) -> Result<Vec<ConfigChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, time, old_value, new_value FROM configuration_history WHERE pile = $1 \
             ORDER BY time DESC, key",
        )
        .bind(pile)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConfigChange {
                    key: r.try_get("key")?,
                    time: r.try_get("time")?,
                    old_value: r.try_get("old_value")?,
                    new_value: r.try_get("new_value")?,
                })
            })
            .collect()
    }

    async fn refused(&self, limit: i64) -> Result<Vec<RefusedRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT time, remote, identity, reason, http_status FROM refused_handshakes \
             ORDER BY time DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RefusedRow {
                    time: r.try_get("time")?,
                    remote: r.try_get("remote")?,
                    identity: r.try_get("identity")?,
                    reason: r.try_get("reason")?,
                    http_status: r.try_get("http_status")?,
                })
            })
            .collect()
    }

    async fn messages(
        &self,
        pile: &str,
        action: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LogRow>, StoreError> {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "SELECT pile, time, seq, direction, action, message_id, frame FROM message_log WHERE pile = ",
        );
        q.push_bind(pile.to_owned());
        if let Some(a) = action {
            q.push(" AND action = ").push_bind(a.to_owned());
        }
        q.push(" ORDER BY time DESC, seq DESC LIMIT ")
            .push_bind(limit);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let direction: String = r.try_get("direction")?;
                Ok(LogRow {
                    pile: r.try_get("pile")?,
                    time: r.try_get("time")?,
                    seq: r.try_get("seq")?,
                    direction: if direction == "in" { "in" } else { "out" },
                    action: r.try_get("action")?,
                    message_id: r.try_get("message_id")?,
                    frame: r.try_get("frame")?,
                })
            })
            .collect()
    }

    async fn deviations(&self, pile: &str, limit: i64) -> Result<Vec<DeviationRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT pile, time, action, kind, detail FROM deviations WHERE pile = $1 \
             ORDER BY time DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeviationRow {
                    pile: r.try_get("pile")?,
                    time: r.try_get("time")?,
                    action: r.try_get("action")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn events(&self, pile: &str, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT pile, time, kind, detail FROM pile_events WHERE pile = $1 \
             ORDER BY time DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    pile: r.try_get("pile")?,
                    time: r.try_get("time")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn commands(&self, pile: &str, limit: i64) -> Result<Vec<CommandRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, pile, action, payload, sent_at, answered_at, outcome, result FROM commands \
             WHERE pile = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(pile)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CommandRow {
                    id: r.try_get("id")?,
                    pile: r.try_get("pile")?,
                    action: r.try_get("action")?,
                    payload: r.try_get("payload")?,
                    sent_at: r.try_get("sent_at")?,
                    answered_at: r.try_get("answered_at")?,
                    outcome: r.try_get("outcome")?,
                    result: r.try_get("result")?,
                })
            })
            .collect()
    }
}
