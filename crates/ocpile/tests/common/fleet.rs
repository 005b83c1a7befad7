//! `ocpile fleet` for the process tests: the process, its summary, card sessions on its piles.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

use super::cluster::poll;
use super::{http, PileProcess, WAIT};

/// Starts `ocpile fleet` with its control API on a port of its choosing and meter values every
/// second; the process and the API's address.
pub fn start_fleet(
    count: usize,
    csms: &str,
    state: &Path,
    extra: &[&str],
) -> (PileProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocpile"))
        .args(["fleet", "--count", &count.to_string(), "--csms", csms])
        .arg("--state")
        .arg(state)
        .args(["--control", "127.0.0.1:0", "--sample-interval", "1"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocpile fleet starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("fleet control API listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            } else if std::env::var_os("OCPILE_TEST_VERBOSE").is_some() {
                eprintln!("fleet: {line}");
            }
        }
    });
    let addr = rx.recv_timeout(WAIT).expect("the fleet prints its address");
    (PileProcess(child), addr)
}

/// The fleet's summary (`GET /fleet`) once it satisfies `done`, within `within`.
pub async fn fleet_until(
    control: &str,
    within: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    poll(within, what, || async {
        let (_, body) = http(control, "GET", "/fleet", None).await;
        done(&body).then_some(body)
    })
    .await
}

/// The identities of a fleet of `n` with the default prefix.
pub fn fleet_ids(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("FLEET-{i:05}")).collect()
}

/// Sends the same request to the control port of each pile of the fleet, which must accept it.
pub async fn each_pile(control: &str, ids: &[String], method: &str, tail: &str, body: Value) {
    for id in ids {
        let (code, answer) = http(
            control,
            method,
            &format!("/piles/{id}/{tail}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(code, 200, "{id} {tail}: {answer}");
    }
}

/// Card sessions at every pile: plug-and-charge off, every EV plugged in, then the card; each
/// pile then sends StartTransaction (the caller waits for the central to list them).
pub async fn start_card_sessions(control: &str, ids: &[String], card: &str) {
    each_pile(
        control,
        ids,
        "POST",
        "config",
        json!({"key": "VendorDirectWorkMode", "value": "false"}),
    )
    .await;
    let (code, body) = http(
        control,
        "POST",
        "/fleet/plug-all",
        Some(json!({"max_current": 16.0})),
    )
    .await;
    assert_eq!(
        (code, body["connectors"].as_u64()),
        (200, Some(ids.len() as u64)),
        "{body}"
    );
    each_pile(
        control,
        ids,
        "POST",
        "card",
        json!({"idTag": card, "connector": 1}),
    )
    .await;
}

/// The card again at every pile ends its session (then the EVs leave).
pub async fn stop_card_sessions(control: &str, ids: &[String], card: &str) {
    each_pile(
        control,
        ids,
        "POST",
        "card",
        json!({"idTag": card, "connector": 1}),
    )
    .await;
    http(control, "POST", "/fleet/unplug-all", None).await;
}

/// Waits until every pile of the fleet has sent everything (its outbox empty, its session
/// over): all it sent was answered.
pub async fn until_all_answered(control: &str, ids: &[String], within: Duration) {
    for id in ids {
        poll(within, &format!("{id} answered all it sent"), || async {
            let (_, s) = http(control, "GET", &format!("/piles/{id}/state"), None).await;
            (s["outbox"] == 0 && s["connectors"][0]["transaction"].is_null()).then_some(())
        })
        .await;
    }
}
