//! `ocpile fleet` against `ocpile central`, both real processes: hundreds of piles boot, run
//! sessions, and a SIGKILL of the fleet in the middle of them loses no transaction message.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::central::{start_central, CentralProcess};
use common::fleet::start_fleet;
use common::{http, state_dir, WAIT};
use serde_json::{json, Value};
use tokio::time::timeout;

const CARD: &str = "FLEET-CARD";

/// Starts `ocpile fleet` with its control API on a port of its choosing; the process and the
async fn fleet_until(control: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    timeout(WAIT, async {
        loop {
            let (_, body) = http(control, "GET", "/fleet", None).await;
            if done(&body) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the fleet never showed {what}"))
}

/// Every pile gets an EV, then the card (plug-and-charge off, so that the card's session is
/// the only one); returns once the central lists them all charging.
async fn start_sessions(central: &CentralProcess, control: &str, ids: &[String]) {
    for id in ids {
        let (code, body) = http(
            control,
            "POST",
            &format!("/piles/{id}/config"),
            Some(json!({"key": "VendorDirectWorkMode", "value": "false"})),
        )
        .await;
        assert_eq!(code, 200, "{id}: {body}");
    }
    let (code, body) = http(
        control,
        "POST",
        "/fleet/plug-all",
        Some(json!({"max_current": 16.0})),
    )
    .await;
    assert_eq!(
        (code, body["connectors"].as_u64()),
        (200, Some(ids.len() as u64))
    );
    for id in ids {
        let (code, body) = http(
            control,
            "POST",
            &format!("/piles/{id}/card"),
            Some(json!({"idTag": CARD, "connector": 1})),
        )
        .await;
        assert_eq!(code, 200, "{id}: {body}");
    }
    let n = ids.len();
    central
        .until(
            "/api/transactions?active=true",
            "every session running",
            |t| t.as_array().is_some_and(|t| t.len() == n),
        )
        .await;
}

fn ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("FLEET-{i:05}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_piles_boot_run_sessions_and_the_central_shows_each_once() {
    let central = start_central(&state_dir("fleet-central"), None, &["--admission", "open"]);
    central.accept_id_tag(CARD).await;
    // Connections from two loopback addresses, taken in turn.
    let (_fleet, control) = start_fleet(
        200,
        &central.ocpp_url(),
        &state_dir("fleet200"),
        &["--bind", "127.0.0.2-127.0.0.3"],
    );
    let summary = fleet_until(&control, "200 accepted", |s| s["accepted"] == 200).await;
    assert_eq!(summary["booted"], 200);
    assert_eq!(summary["failures"], 0);
    let piles = central.ok("GET", "/api/piles", None).await;
    let connected: BTreeSet<String> = piles
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["connected"] == true && p["registration"] == "Accepted")
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    let ids = ids(200);
    assert_eq!(
        connected,
        ids.iter().cloned().collect(),
        "the central sees every pile"
    );

    // A pile reached through the fleet's API is the pile's own control port.
    let (code, state) = http(&control, "GET", "/piles/FLEET-00042/state", None).await;
    assert_eq!(code, 200);
    assert_eq!(state["identity"], "FLEET-00042");
    assert_eq!(state["connection"]["accepted"], true);
    let (code, _) = http(&control, "GET", "/piles/NOPE/state", None).await;
    assert_eq!(code, 404);

    start_sessions(&central, &control, &ids).await;
    fleet_until(&control, "200 charging", |s| s["charging"] == 200).await;
    // Meter values every second, read from the simulated meters when the piles sample.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The card again ends each session (StopTransactionOnEVSideDisconnect is false by the
    // FAQ's default: an EV that leaves alone only suspends it); then the EVs leave.
    for id in &ids {
        let (code, _) = http(
            &control,
            "POST",
            &format!("/piles/{id}/card"),
            Some(json!({"idTag": CARD, "connector": 1})),
        )
        .await;
        assert_eq!(code, 200);
    }
    http(&control, "POST", "/fleet/unplug-all", None).await;
    let done = central
        .until("/api/transactions", "every session stopped", |t| {
            t.as_array()
                .is_some_and(|t| t.len() == 200 && t.iter().all(|t| !t["stop"].is_null()))
        })
        .await;
    let transactions = done.as_array().unwrap();
    let per_pile: BTreeSet<&str> = transactions
        .iter()
        .map(|t| t["pile"].as_str().unwrap())
        .collect();
    assert_eq!(per_pile.len(), 200, "one transaction per pile, none twice");
    for t in transactions {
        assert_eq!(t["id_tag"], CARD);
        assert_eq!(t["reason"], "Local", "{t}");
        assert!(t["energy_wh"].as_i64().unwrap() > 0, "{t}");
    }
    let summary = fleet_until(&control, "nothing charging", |s| s["charging"] == 0).await;
    assert_eq!(summary["connected"], 200);
    assert_eq!(summary["accepted"], 200);
    assert_eq!(summary["connections"], 200, "no reconnects");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_the_fleet_mid_sessions_loses_no_transaction_message() {
    const N: usize = 60;
    let central = start_central(
        &state_dir("fleet-kill-central"),
        None,
        &["--admission", "open"],
    );
    central.accept_id_tag(CARD).await;
    let state = state_dir("fleet-kill");
    let (mut fleet, control) = start_fleet(N, &central.ocpp_url(), &state, &[]);
    fleet_until(&control, "all accepted", |s| s["accepted"] == N).await;
    let ids = ids(N);
    start_sessions(&central, &control, &ids).await;
    // Meter values flow (every second, each saved before it is sent), then SIGKILL.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    fleet.kill();
    let before = central.ok("GET", "/api/transactions", None).await;
    assert_eq!(before.as_array().unwrap().len(), N);

    // The fleet starts again from its store: each pile ends its interrupted transaction
    // (its EV is gone with the process) and delivers what its outbox held.
    let (_fleet, control) = start_fleet(N, &central.ocpp_url(), &state, &[]);
    fleet_until(&control, "all accepted again", |s| s["accepted"] == N).await;
    let done = central
        .until("/api/transactions", "every transaction stopped", |t| {
            t.as_array()
                .is_some_and(|t| t.iter().all(|t| !t["stop"].is_null()))
        })
        .await;
    let transactions = done.as_array().unwrap();
    assert_eq!(transactions.len(), N, "no transaction lost or doubled");
    for t in transactions {
        let pile = t["pile"].as_str().unwrap();
        let id = t["id"].as_i64().unwrap();
        assert_eq!(t["reconciled"], false, "{t}");
        let values = central
            .ok("GET", &format!("/api/transactions/{id}/meter-values"), None)
            .await;
        let values = values.as_array().unwrap().clone();
        assert!(!values.is_empty(), "{pile}: meter values before the kill");
        let rows: Vec<String> = values.iter().map(Value::to_string).collect();
        let distinct: BTreeSet<&String> = rows.iter().collect();
        assert_eq!(
            distinct.len(),
            rows.len(),
            "{pile}: a meter value stored twice"
        );
        // The register never goes back, and the stop is where the meter was last recorded.
        let stop = t["meter_stop"].as_i64().unwrap();
        assert!(stop >= t["meter_start"].as_i64().unwrap(), "{t}");
    }
    // Nothing left in any outbox.
    for id in ids.iter().step_by(7) {
        let (_, state) = http(&control, "GET", &format!("/piles/{id}/state"), None).await;
        assert_eq!(state["outbox"], 0, "{id}");
    }
}
