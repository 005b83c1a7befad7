//! `ocpile central` stopped with SIGTERM while a fleet charges: it closes the piles'
//! connections spread over `--drain-seconds`, exits 0 soon after, and every MeterValues it
//! answered is in its database.

mod common;

use std::time::{Duration, Instant};

use common::central::{start_central, CentralProcess};
use common::fleet::start_fleet;
use common::{http, state_dir, WAIT};
use serde_json::{json, Value};

const CARD: &str = "DRAIN-CARD";
const PILES: usize = 24;
const DRAIN: Duration = Duration::from_secs(3);

async fn fleet_until(control: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, body) = http(control, "GET", "/fleet", None).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "the fleet never showed {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ids() -> Vec<String> {
    (1..=PILES).map(|i| format!("DRAIN-{i:05}")).collect()
}

/// Every pile charges with the card (plug-and-charge off); returns once the central lists
/// every session.
async fn start_sessions(central: &CentralProcess, control: &str) {
    for id in ids() {
        let path = format!("/piles/{id}/config");
        let body = json!({"key": "VendorDirectWorkMode", "value": "false"});
        assert_eq!(http(control, "POST", &path, Some(body)).await.0, 200);
    }
    let ev = json!({"max_current": 16.0});
    assert_eq!(
        http(control, "POST", "/fleet/plug-all", Some(ev)).await.0,
        200
    );
    for id in ids() {
        let path = format!("/piles/{id}/card");
        let card = json!({"idTag": CARD, "connector": 1});
        assert_eq!(http(control, "POST", &path, Some(card)).await.0, 200);
    }
    central
        .until("/api/transactions?active=true", "every session", |t| {
            t.as_array().is_some_and(|t| t.len() == PILES)
        })
        .await;
}

fn sigterm(central: &CentralProcess) {
    let pid = i32::try_from(central.child.id()).unwrap();
    // SAFETY: a signal to the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_closes_the_piles_spread_over_the_drain_and_loses_nothing() {
    let data = state_dir("drain-central");
    let drain = DRAIN.as_secs().to_string();
    let extra = ["--admission", "open", "--drain-seconds", drain.as_str()];
    let mut central = start_central(&data, None, &extra);
    central.accept_id_tag(CARD).await;
    let (mut fleet, control) = start_fleet(
        PILES,
        &central.ocpp_url(),
        &state_dir("drain-fleet"),
        &["--id-prefix", "DRAIN-"],
    );
    fleet_until(&control, "every pile accepted", |s| s["accepted"] == PILES).await;
    start_sessions(&central, &control).await;
    // Meter values flow: every pile samples each second.
    fleet_until(&control, "meter values answered", |s| {
        s["meter_values_answered"].as_u64() > Some(2 * PILES as u64)
    })
    .await;

    let signalled = Instant::now();
    sigterm(&central);
    // The fleet sees its piles go one after another, not all at once.
    let mut seen = Vec::new();
    let status = loop {
        if let Some(status) = central.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < DRAIN + Duration::from_secs(8),
            "the central still runs {:?} after SIGTERM",
            signalled.elapsed()
        );
        let (_, summary) = http(&control, "GET", "/fleet", None).await;
        seen.push(summary["connected"].as_i64().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "the central exits 0 after a drain: {status}"
    );
    assert!(took >= DRAIN * 3 / 4, "the drain took {took:?}");
    let partway = seen.iter().filter(|&&c| c > 0 && c < PILES as i64).count();
    assert!(
        partway >= 10,
        "connected piles seen while draining: {seen:?}"
    );

    // What the fleet got answered before the central went, and nothing after.
    let summary = fleet_until(&control, "every pile offline", |s| s["connected"] == 0).await;
    let answered = summary["meter_values_answered"].as_u64().unwrap();
    fleet.kill();

    // The same database, read by a central on another port (the fleet is gone).
    central = start_central(&data, None, &["--admission", "open"]);
    let mut disconnected = Vec::new();
    for id in ids() {
        let events = central
            .ok("GET", &format!("/api/piles/{id}/events"), None)
            .await;
        let last = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "Disconnected")
            .filter_map(|e| e["time"].as_str())
            .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
            .max()
            .unwrap_or_else(|| panic!("{id}: no Disconnected event: {events}"));
        disconnected.push(last);
    }
    disconnected.sort();
    let spread = (disconnected[PILES - 1] - disconnected[0])
        .to_std()
        .unwrap();
    assert!(
        spread >= DRAIN * 2 / 3 && spread <= DRAIN + Duration::from_secs(1),
        "the disconnections spread over {spread:?}: {disconnected:?}"
    );
    let transactions = central.ok("GET", "/api/transactions", None).await;
    let mut stored = 0;
    for t in transactions.as_array().unwrap() {
        let path = format!("/api/transactions/{}/meter-values", t["id"]);
        stored += central
            .ok("GET", &path, None)
            .await
            .as_array()
            .unwrap()
            .len() as u64;
    }
    assert!(
        stored >= answered,
        "{answered} MeterValues answered, {stored} meter values stored"
    );
}
