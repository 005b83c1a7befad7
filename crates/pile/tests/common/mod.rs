//! Helpers shared by the pile's property tests: a pile on a virtual clock, and a central system
//! that answers whatever the pile sends.

#![allow(dead_code)]

pub mod bench;
pub mod harness;
pub mod schemas;

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pile::config::{Configuration, Factory};
use pile::{ChargePoint, Durable, Identity, Options, Output};
use serde_json::{json, Value};

/// The official OCPP 1.6 material: `$OCPP16_DIR`, or `../shared/ocpp16` beside the checkout.
pub fn ocpp16_dir() -> std::path::PathBuf {
    std::env::var("OCPP16_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ocpp16")
        })
}

/// A property-test runner with a fixed seed (the same cases on every run) and `cases` cases.
pub fn runner(cases: u32) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

/// A fresh pile with `connectors` connectors, not yet connected.
pub fn pile(connectors: u32) -> ChargePoint {
    let factory = Factory {
        serial_number: "TEST".into(),
        connectors,
        settings: "WS,h,80,/ocpp/,ocpp1.6,,,".parse().unwrap(),
        offline_cards: Vec::new(),
    };
    let identity = Identity {
        vendor: "ocpile".into(),
        model: "M3G3".into(),
        firmware_version: "1".into(),
        meter_type: None,
        meter_serial_number: None,
    };
    let wall = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    ChargePoint::new(
        Configuration::new(factory),
        identity,
        Options::default(),
        Durable::default(),
        Duration::ZERO,
        wall,
    )
}

/// The frames among the outputs.
pub fn sends(out: Vec<Output>) -> Vec<Value> {
    out.into_iter()
        .filter_map(|o| match o {
            Output::Send(f) => Some(serde_json::from_str(&f).unwrap()),
            _ => None,
        })
        .collect()
}

/// What the central system answers to a CALL of the pile.
pub fn answer(call: &Value) -> Value {
    match call[2].as_str().unwrap() {
        "BootNotification" => {
            json!({"status":"Accepted","currentTime":"2026-01-01T00:00:00.000Z","interval":900})
        }
        "Heartbeat" => json!({"currentTime":"2026-01-01T00:00:00.000Z"}),
        // idTags that start with BAD are not valid; the others are.
        "Authorize" => json!({"idTagInfo": {"status": verdict(&call[3]["idTag"])}}),
        "StartTransaction" => {
            static NEXT: AtomicI32 = AtomicI32::new(1);
            json!({
                "transactionId": NEXT.fetch_add(1, Ordering::Relaxed),
                "idTagInfo": {"status": verdict(&call[3]["idTag"])}
            })
        }
        _ => json!({}),
    }
}

fn verdict(id_tag: &Value) -> &'static str {
    if id_tag.as_str().unwrap_or_default().starts_with("BAD") {
        "Invalid"
    } else {
        "Accepted"
    }
}

/// Answers every CALL among `frames`, and those that follow, showing each to `seen` first.
pub fn answer_all<E>(
    cp: &mut ChargePoint,
    frames: Vec<Value>,
    now: Duration,
    mut seen: impl FnMut(&Value) -> Result<(), E>,
) -> Result<(), E> {
    let mut pending: Vec<Value> = frames.into_iter().filter(|f| f[0] == 2).collect();
    while let Some(call) = pending.pop() {
        seen(&call)?;
        let reply = json!([3, call[1], answer(&call)]).to_string();
        pending.extend(
            sends(cp.handle(pile::Input::Frame(&reply), now))
                .into_iter()
                .filter(|f| f[0] == 2),
        );
    }
    Ok(())
}
