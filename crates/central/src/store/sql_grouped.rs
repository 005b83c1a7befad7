// The writes of a batch that are made a few hundred per statement instead of one each: the
// admissions, boots, presence records, connector statuses and events that a boot storm or a
// busy fleet sends most. Included beside `sql_writes.rs`.
//
// Why their order within a batch may change: every write of a batch was handed over while the
// others were waiting for the same commit, and whoever hands one over waits for its result
// before its next write, so the writes of a batch are concurrent and any order of them is one
// their writers could have met. Admissions go first (what follows may need the pile), the
// others after the writes made one at a time.

/// How a batch's write is made.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// On its own, in the batch's order (`apply_one`).
    Alone,
    /// With the batch's admissions, before the others.
    Admission,
    /// With its kind, after the writes made on their own.
    After,
}

impl Grouping {
    fn of(op: &WriteOp) -> Self {
        match op {
            WriteOp::AdmitPile { .. } => Grouping::Admission,
            WriteOp::Boot { .. } | WriteOp::Status { .. } | WriteOp::Connected { .. } => {
                Grouping::After
            }
            WriteOp::Event {
                firmware_status: None,
                diagnostics_status: None,
                ..
            } => Grouping::After,
            _ => Grouping::Alone,
        }
    }
}

/// How each write of a batch is made. The writes of a pile that the batch also deletes,
/// registers, or disconnects are all made on their own, in the batch's order (such a batch is
/// rare, and these do not commute with the grouped ones).
fn grouping(ops: &[WriteOp]) -> Vec<Grouping> {
    let apart: std::collections::HashSet<&str> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::DeletePile { id }
            | WriteOp::RegisterPile { id, .. }
            | WriteOp::SetRegistration { id, .. }
            | WriteOp::SetSecurity { id, .. }
            | WriteOp::ConnectedAtProfile { id, .. }
            | WriteOp::PasswordRotated { id, .. }
            | WriteOp::PasswordRotationUndone { id } => Some(id.as_str()),
            WriteOp::Disconnected { pile, .. } => Some(pile.as_str()),
            _ => None,
        })
        .collect();
    ops.iter()
        .map(|op| match grouped_pile(op) {
            Some(pile) if apart.contains(pile) => Grouping::Alone,
            _ => Grouping::of(op),
        })
        .collect()
}

/// The pile of a write that may be grouped.
fn grouped_pile(op: &WriteOp) -> Option<&str> {
    match op {
        WriteOp::AdmitPile { id, .. } => Some(id),
        WriteOp::Boot { pile, .. }
        | WriteOp::Event { pile, .. }
        | WriteOp::Status { pile, .. }
        | WriteOp::Connected { pile, .. } => Some(pile),
        _ => None,
    }
}

/// The admissions of a batch, a few hundred per statement; each one's result is whether it
/// added its pile (the first of a batch to name a pile that was not known).
async fn admit_piles(
    tx: &mut Tx,
    ops: &[(usize, &WriteOp)],
    now: Millis,
    results: &mut [WriteResult],
) -> Result<(), sqlx::Error> {
    let admissions: Vec<(usize, &str, &str)> = ops
        .iter()
        .filter_map(|&(i, op)| match op {
            WriteOp::AdmitPile { id, registration } => Some((i, id.as_str(), registration.as_str())),
            _ => None,
        })
        .collect();
    let mut added = std::collections::HashSet::new();
    for chunk in admissions.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO piles (id, registration, created_at, last_seen) ",
        );
        q.push_values(chunk, |mut b, (_, id, registration)| {
            b.push_bind((*id).to_owned())
                .push_bind((*registration).to_owned())
                .push_bind(now)
                .push_bind(now);
        });
        q.push(" ON CONFLICT (id) DO NOTHING RETURNING id");
        let ids: Vec<(String,)> = q.build_query_as().fetch_all(&mut **tx).await?;
        added.extend(ids.into_iter().map(|(id,)| id));
    }
    for (i, id, _) in admissions {
        let first = added.remove(id);
        results[i] = WriteResult::Affected(u64::from(first));
    }
    Ok(())
}

/// The grouped writes made after the others: boots, presence records, statuses, events.
async fn apply_after(tx: &mut Tx, ops: &[&WriteOp], now: Millis) -> Result<(), sqlx::Error> {
    update_boots(tx, ops, now).await?;
    update_presence(tx, ops, now).await?;
    upsert_statuses(tx, ops).await?;
    insert_events(tx, ops, now).await
}

/// The last write of each key among `items`, in the batch's order.
fn last_of_each<'a, K: Eq + std::hash::Hash, T>(
    items: impl Iterator<Item = (K, &'a T)>,
) -> Vec<&'a T> {
    let mut index: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    let mut kept: Vec<Option<&'a T>> = Vec::new();
    for (key, item) in items {
        if let Some(&i) = index.get(&key) {
            kept[i] = None;
        }
        index.insert(key, kept.len());
        kept.push(Some(item));
    }
    kept.into_iter().flatten().collect()
}

/// The boots of a batch (the pile's last, where it booted twice).
async fn update_boots(tx: &mut Tx, ops: &[&WriteOp], now: Millis) -> Result<(), sqlx::Error> {
    let boots: Vec<(&String, &BootInfo)> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Boot { pile, info } => Some((pile, info)),
            _ => None,
        })
        .collect();
    let boots = last_of_each(boots.iter().map(|b| (b.0.as_str(), b)));
    for chunk in boots.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "WITH booted (id, vendor, model, serial_number, charge_box_serial_number, \
             firmware_version, iccid, imsi, meter_type, meter_serial_number) AS (",
        );
        q.push_values(chunk, |mut b, (pile, info)| {
            b.push_bind((*pile).clone())
                .push_bind(info.vendor.clone())
                .push_bind(info.model.clone())
                .push_bind(info.serial_number.clone())
                .push_bind(info.charge_box_serial_number.clone())
                .push_bind(info.firmware_version.clone())
                .push_bind(info.iccid.clone())
                .push_bind(info.imsi.clone())
                .push_bind(info.meter_type.clone())
                .push_bind(info.meter_serial_number.clone());
        });
        q.push(
            ") UPDATE piles SET vendor = booted.vendor, model = booted.model, \
             serial_number = booted.serial_number, \
             charge_box_serial_number = booted.charge_box_serial_number, \
             firmware_version = booted.firmware_version, iccid = booted.iccid, \
             imsi = booted.imsi, meter_type = booted.meter_type, \
             meter_serial_number = booted.meter_serial_number, last_boot = ",
        );
        q.push_bind(now).push(", last_seen = ").push_bind(now);
        q.push(" FROM booted WHERE piles.id = booted.id");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The presence records of a batch's new connections (a pile's last, where it connected
/// twice).
async fn update_presence(tx: &mut Tx, ops: &[&WriteOp], now: Millis) -> Result<(), sqlx::Error> {
    let connected: Vec<(&String, &String, i64)> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Connected {
                pile,
                node,
                connection,
            } => Some((pile, node, *connection)),
            _ => None,
        })
        .collect();
    let connected = last_of_each(connected.iter().map(|c| (c.0.as_str(), c)));
    for chunk in connected.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new("WITH live (id, node, connection) AS (");
        q.push_values(chunk, |mut b, (pile, node, connection)| {
            b.push_bind((*pile).clone())
                .push_bind((*node).clone())
                .push_bind(*connection);
        });
        q.push(
            ") UPDATE piles SET connection = live.connection, node = live.node, connected_at = ",
        );
        q.push_bind(now);
        q.push(" FROM live WHERE piles.id = live.id");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A connector status of a batch, borrowed from its write.
struct StatusRow<'a> {
    pile: &'a str,
    connector: i64,
    status: &'a str,
    error_code: &'a str,
    vendor_error_code: Option<&'a str>,
    info: Option<&'a str>,
    vendor_id: Option<&'a str>,
    time: Millis,
}

impl<'a> StatusRow<'a> {
    fn of(op: &'a WriteOp) -> Option<Self> {
        match op {
            WriteOp::Status {
                pile,
                connector,
                status,
                error_code,
                vendor_error_code,
                info,
                vendor_id,
                time,
            } => Some(StatusRow {
                pile,
                connector: *connector,
                status,
                error_code,
                vendor_error_code: vendor_error_code.as_deref(),
                info: info.as_deref(),
                vendor_id: vendor_id.as_deref(),
                time: *time,
            }),
            _ => None,
        }
    }
}

/// The connector statuses of a batch: each connector's latest (by its time; of two at the same
/// time the later in the batch), and every one in the history.
async fn upsert_statuses(tx: &mut Tx, ops: &[&WriteOp]) -> Result<(), sqlx::Error> {
    let all: Vec<StatusRow> = ops.iter().copied().filter_map(StatusRow::of).collect();
    if all.is_empty() {
        return Ok(());
    }
    let mut latest: std::collections::HashMap<(&str, i64), usize> =
        std::collections::HashMap::new();
    for (i, row) in all.iter().enumerate() {
        let key = (row.pile, row.connector);
        if latest.get(&key).is_none_or(|&kept| row.time >= all[kept].time) {
            latest.insert(key, i);
        }
    }
    let mut current: Vec<usize> = latest.into_values().collect();
    current.sort_unstable();
    let current: Vec<&StatusRow> = current.into_iter().map(|i| &all[i]).collect();
    for chunk in current.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO connectors (pile, connector, status, error_code, vendor_error_code, \
             info, vendor_id, time) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.pile.to_owned())
                .push_bind(r.connector)
                .push_bind(r.status.to_owned())
                .push_bind(r.error_code.to_owned())
                .push_bind(r.vendor_error_code.map(str::to_owned))
                .push_bind(r.info.map(str::to_owned))
                .push_bind(r.vendor_id.map(str::to_owned))
                .push_bind(r.time);
        });
        q.push(
            " ON CONFLICT (pile, connector) DO UPDATE SET status = excluded.status, \
             error_code = excluded.error_code, vendor_error_code = excluded.vendor_error_code, \
             info = excluded.info, vendor_id = excluded.vendor_id, time = excluded.time \
             WHERE connectors.time <= excluded.time",
        );
        q.build().execute(&mut **tx).await?;
    }
    for chunk in all.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO status_history (pile, connector, time, status, error_code, \
             vendor_error_code, info) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.pile.to_owned())
                .push_bind(r.connector)
                .push_bind(r.time)
                .push_bind(r.status.to_owned())
                .push_bind(r.error_code.to_owned())
                .push_bind(r.vendor_error_code.map(str::to_owned))
                .push_bind(r.info.map(str::to_owned));
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The events of a batch that set nothing on their pile, in the batch's order.
async fn insert_events(tx: &mut Tx, ops: &[&WriteOp], now: Millis) -> Result<(), sqlx::Error> {
    let events: Vec<(&str, &str, &str)> = ops
        .iter()
        .filter_map(|op| match op {
            WriteOp::Event {
                pile, kind, detail, ..
            } => Some((pile.as_str(), kind.as_str(), detail.as_str())),
            _ => None,
        })
        .collect();
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::<Db>::new("INSERT INTO pile_events (pile, time, kind, detail) ");
        q.push_values(chunk, |mut b, (pile, kind, detail)| {
            b.push_bind((*pile).to_owned())
                .push_bind(now)
                .push_bind((*kind).to_owned())
                .push_bind((*detail).to_owned());
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
