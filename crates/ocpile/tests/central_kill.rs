//! `ocpile central` killed with SIGKILL, again and again, while our piles (the real binaries)
//! charge and send transaction messages: after the last restart every transaction is in the
//! database once, whole (started, stopped at the pile's final register), none reconciled
//! (which is what a lost StartTransaction would become), on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::central::{databases, start_central, start_central_at};
use common::wire::{set, state_until};
use common::{http, start_pile_with_control, state_dir, PileProcess};
use serde_json::json;

fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

const PILES: usize = 3;

async fn kill_run(db: Option<String>, name: &str) {
    let data = state_dir(&format!("kill-central-{name}"));
    // The first start picks the port; every restart listens there again.
    let mut central = start_central(&data, db.as_deref(), &["--admission", "open"]);
    let listen = central.addr.clone();
    let url = central.ocpp_url();
    let ids: Vec<String> = (0..PILES).map(|i| format!("KILL-{name}-{i}")).collect();
    for id in &ids {
        central
            .ok(
                "POST",
                "/api/id-tags",
                Some(json!({"id_tag": id, "status": "Accepted"})),
            )
            .await;
    }
    let mut piles: Vec<(PileProcess, String)> = Vec::new();
    for id in &ids {
        let state = state_dir(&format!("kill-central-{id}"));
        let (pile, control) = start_pile_with_control(id, &url, &state, &[]);
        state_until(&control, "accepted", |s| {
            s["connection"]["accepted"] == true
        })
        .await;
        set(&control, "MeterValueSampleInterval", "1").await;
        set(&control, "TransactionMessageRetryInterval", "1").await;
        // An unplug ends the session.
        set(&control, "StopTransactionOnEVSideDisconnect", "true").await;
        piles.push((pile, control));
    }
    let mut seed = 0xC0FF_EE11_u64;
    for round in 0..5 {
        // Plug-and-charge sessions start and stop on every pile while the central dies at an
        // arbitrary moment.
        for (_, control) in &piles {
            http(control, "POST", "/connectors/1/plug", None).await;
        }
        tokio::time::sleep(Duration::from_millis(300 + next(&mut seed) % 1200)).await;
        for (i, (_, control)) in piles.iter().enumerate() {
            if (round + i) % 2 == 0 {
                http(control, "POST", "/connectors/1/unplug", None).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(next(&mut seed) % 600)).await;
        central.kill();
        for (_, control) in &piles {
            http(control, "POST", "/connectors/1/unplug", None).await;
        }
        tokio::time::sleep(Duration::from_millis(next(&mut seed) % 500)).await;
        central = start_central_at(&data, db.as_deref(), &listen, &["--admission", "open"]);
    }
    // Everything unplugged: each pile empties its outbox into the last central.
    let mut registers = Vec::new();
    for (_, control) in &piles {
        let s = state_until(control, "an empty outbox", |s| {
            s["connection"]["accepted"] == true
                && s["outbox"] == 0
                && s["connectors"][0]["transaction"].is_null()
        })
        .await;
        registers.push(s["connectors"][0]["energy_wh"].as_i64().unwrap());
    }
    let mut total = 0;
    for (id, register) in ids.iter().zip(registers) {
        let txs = central
            .ok("GET", &format!("/api/transactions?pile={id}"), None)
            .await;
        let mut txs = txs.as_array().unwrap().clone();
        txs.sort_by_key(|t| t["id"].as_i64());
        assert!(!txs.is_empty(), "{id}: no transaction");
        let mut previous_stop = 0;
        let mut starts = std::collections::BTreeSet::new();
        for t in &txs {
            assert_eq!(t["reconciled"], false, "{id}: a start was lost: {t}");
            assert!(t["stop"].is_string(), "{id}: a stop was lost: {t}");
            assert!(
                starts.insert(t["start"].as_str().unwrap().to_owned()),
                "{id}: counted twice: {t}"
            );
            let (start, stop) = (
                t["meter_start"].as_i64().unwrap(),
                t["meter_stop"].as_i64().unwrap(),
            );
            assert!(start >= previous_stop && stop >= start, "{id}: {txs:?}");
            previous_stop = stop;
        }
        assert_eq!(
            previous_stop, register,
            "{id}: the last stop is at the pile's register"
        );
        total += txs.len();
    }
    eprintln!("{name}: {total} transactions over {PILES} piles and 5 kills of the central");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_the_central_loses_and_doubles_nothing() {
    for (i, db) in databases("kill").into_iter().enumerate() {
        kill_run(db, &format!("db{i}")).await;
    }
}
