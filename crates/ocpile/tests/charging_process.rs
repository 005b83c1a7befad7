//! Charging sessions of the real `ocpile pile` process, driven through its control port while
//! a central system of ours records every frame on the wire; and SIGKILL at arbitrary moments
//! of a session, after which nothing is lost and nothing acknowledged is sent again.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::wire::{accept, server, set, state_until, Call, Wire};
use common::{http, start_pile_with_control, state_dir};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_card_session_seen_on_the_wire_and_at_the_pile() {
    let (mut server, url) = server().await;
    let wire = Wire::default();
    let state = state_dir("card-session");
    let (_pile, control) = start_pile_with_control("CARD-PILE", &url, &state, &[]);
    accept(&mut server, &wire).await;
    set(&control, "VendorDirectWorkMode", "false").await;
    set(&control, "MeterValueSampleInterval", "1").await;

    // A card, then the plug of an EV that draws at most 16 A.
    let (code, _) = http(
        &control,
        "POST",
        "/card",
        Some(json!({"idTag": "CARD1", "connector": 1})),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        wire.wait_for("Authorize", 1).await[0].payload,
        json!({"idTag": "CARD1"})
    );
    state_until(&control, "Preparing", |s| {
        s["connectors"][0]["status"] == "Preparing"
    })
    .await;
    let (code, _) = http(
        &control,
        "POST",
        "/connectors/1/plug",
        Some(json!({"max_current": 16.0})),
    )
    .await;
    assert_eq!(code, 200);
    let start = wire.wait_for("StartTransaction", 1).await[0].clone();
    assert_eq!(start.payload["idTag"], "CARD1");
    let charging = state_until(&control, "Charging", |s| {
        s["connectors"][0]["status"] == "Charging"
    })
    .await;
    let c = &charging["connectors"][0];
    assert_eq!(c["relay_closed"], true);
    assert_eq!(c["pilot"], "C");
    assert_eq!(c["offered_a"], 32.0);
    assert_eq!(c["transaction"]["id_tag"], "CARD1");
    assert_eq!(charging["hardware"]["outlets"][0]["current_a"], 16.0);

    // Samples every second, with the transactionId, the register growing.
    let samples = wire.wait_for("MeterValues", 3).await;
    let registers: Vec<i64> = samples
        .iter()
        .filter(|m| m.payload["transactionId"] == 1)
        .map(|m| {
            m.payload["meterValue"][0]["sampledValue"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["measurand"] == "Energy.Active.Import.Register")
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(registers.len() >= 2, "{samples:?}");
    assert!(registers.windows(2).all(|w| w[0] <= w[1]));

    // The same card stops it.
    http(
        &control,
        "POST",
        "/card",
        Some(json!({"idTag": "CARD1", "connector": 1})),
    )
    .await;
    let stop = wire.wait_for("StopTransaction", 1).await[0].clone();
    assert_eq!(stop.payload["reason"], "Local");
    assert_eq!(stop.payload["transactionId"], 1);
    assert!(stop.payload["meterStop"].as_i64() >= start.payload["meterStart"].as_i64());
    let after = state_until(&control, "Finishing", |s| {
        s["connectors"][0]["status"] == "Finishing"
    })
    .await;
    assert_eq!(after["connectors"][0]["relay_closed"], false);
    assert_eq!(after["outbox"], 0);
    // Card accepted, start, stop: three beeps.
    assert_eq!(after["hardware"]["beeps"]["accepted"], 3);
}

/// A small deterministic generator for the kill instants.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_any_moment_of_a_session_loses_no_transaction_message() {
    let (mut server, url) = server().await;
    let wire = Wire::default();
    let state = state_dir("kill-session");
    let mut seed = 0x5EED_1234_u64;
    let mut cycles = 0;
    for round in 0..6 {
        let (mut pile, control) = start_pile_with_control("KILL-PILE", &url, &state, &[]);
        accept(&mut server, &wire).await;
        if round == 0 {
            set(&control, "MeterValueSampleInterval", "1").await;
        }
        // Plug and charge: the EV plugs in, the session runs, and the pile dies at some
        // moment of it, without warning.
        let (code, _) = http(&control, "POST", "/connectors/1/plug", None).await;
        assert_eq!(code, 200);
        let millis = 200 + next(&mut seed) % 2500;
        tokio::time::sleep(Duration::from_millis(millis)).await;
        pile.kill();
        cycles += 1;
    }
    // A last start, without a plug: what was cut off stops, and the outbox empties.
    let (_pile, control) = start_pile_with_control("KILL-PILE", &url, &state, &[]);
    accept(&mut server, &wire).await;
    state_until(&control, "an empty outbox", |s| {
        s["outbox"] == 0 && s["connectors"][0]["transaction"].is_null()
    })
    .await;

    let calls = wire.calls.lock().unwrap().clone();
    // A message id seen twice is the same message sent again (its answer did not reach the
    // pile's disk before the kill).
    let mut by_id: BTreeMap<&str, &Call> = BTreeMap::new();
    for call in &calls {
        if let Some(first) = by_id.insert(&call.id, call) {
            assert_eq!(
                (&first.action, &first.payload),
                (&call.action, &call.payload),
                "id {} reused for another message",
                call.id
            );
        }
    }
    let starts: Vec<&&Call> = by_id
        .values()
        .filter(|c| c.action == "StartTransaction")
        .collect();
    let stops: Vec<&&Call> = by_id
        .values()
        .filter(|c| c.action == "StopTransaction")
        .collect();
    assert!(!starts.is_empty() && starts.len() <= cycles);
    let transactions = wire.transactions.lock().unwrap().clone();
    let mut previous_stop = 0;
    let mut ordered: Vec<(i64, &&Call)> =
        starts.iter().map(|s| (transactions[&s.id], *s)).collect();
    ordered.sort_by_key(|(tx, _)| *tx);
    for (tx, start) in ordered {
        let stop: Vec<&&&Call> = stops
            .iter()
            .filter(|s| s.payload["transactionId"] == tx)
            .collect();
        assert_eq!(stop.len(), 1, "transaction {tx}: one StopTransaction");
        let stop = stop[0];
        let meter_start = start.payload["meterStart"].as_i64().unwrap();
        let meter_stop = stop.payload["meterStop"].as_i64().unwrap();
        assert!(meter_start >= previous_stop, "the meter never goes back");
        assert!(meter_stop >= meter_start);
        assert!(
            stop.payload["timestamp"].as_str() >= start.payload["timestamp"].as_str(),
            "transaction {tx}: stops after it started"
        );
        previous_stop = meter_stop;
        let max_sampled = by_id
            .values()
            .filter(|c| c.action == "MeterValues" && c.payload["transactionId"] == tx)
            .flat_map(|c| {
                c.payload["meterValue"][0]["sampledValue"]
                    .as_array()
                    .unwrap()
                    .clone()
            })
            .filter(|v| v["measurand"] == "Energy.Active.Import.Register")
            .map(|v| v["value"].as_str().unwrap().parse::<i64>().unwrap())
            .max()
            .unwrap_or(meter_start);
        assert!(
            meter_stop >= max_sampled,
            "transaction {tx}: stop {meter_stop} below a sample {max_sampled}"
        );
    }
    // Every StopTransaction belongs to a transaction the central registered, and each was
    // cut off by the kill.
    assert_eq!(stops.len(), starts.len());
    assert!(stops.iter().all(|s| s.payload["reason"] == "PowerLoss"));
    eprintln!(
        "{} transactions, {} CALLs, {} sent again under the same id",
        starts.len(),
        calls.len(),
        calls.len() - by_id.len()
    );
}
