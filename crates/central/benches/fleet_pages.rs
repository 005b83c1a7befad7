//! The fleet's pages with 20,000 piles in a SQLite store: the central system runs in this
//! process and every page is fetched over HTTP on loopback, so each time includes the query,
//! the JSON, the dashboard's rendering and the transfer.
//! `cargo bench -p central --bench fleet_pages`; the figures are in BENCHMARKS.md.
//!
//! The fleet: four models, four firmware versions, two connectors a pile; one pile in fifty
//! Faulted, one in a hundred with a GroundFailure and the FAQ 3.6 bits 0xC000, one in ten
//! Charging in a transaction with meter values, one in a hundred Pending; three in five online
//! (the store's `connection` column: no websocket is opened).

use std::sync::Arc;
use std::time::{Duration, Instant};

use central::store::{BootInfo, MeterSample, Repository, WriteOp, WriteResult};

const PILES: usize = 20_000;
const RUNS: usize = 30;
const TOKEN: &str = "bench-token";

fn now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn status(pile: &str, connector: i64, status: &str, error: &str, vendor: Option<&str>) -> WriteOp {
    WriteOp::Status {
        pile: pile.into(),
        connector,
        status: status.into(),
        error_code: error.into(),
        vendor_error_code: vendor.map(Into::into),
        info: None,
        vendor_id: None,
        time: now(),
    }
}

/// The ops that make pile `i` what the fleet's description says.
fn pile_ops(i: usize) -> Vec<WriteOp> {
    let id = format!("FLEET-{i:05}");
    let mut ops = vec![
        WriteOp::RegisterPile {
            id: id.clone(),
            password_hash: None,
            security_profile: 0,
        },
        WriteOp::Boot {
            pile: id.clone(),
            info: BootInfo {
                vendor: "Acme".into(),
                model: format!("M{}", i % 4 + 1),
                serial_number: Some(format!("SN{i:07}")),
                firmware_version: Some(format!("fw-{}", i / 7 % 4 + 1)),
                ..BootInfo::default()
            },
        },
    ];
    let first = if i % 50 == 3 {
        status(&id, 1, "Faulted", "ConnectorLockFailure", None)
    } else if i % 100 == 5 {
        status(&id, 1, "Available", "GroundFailure", Some("0xC000"))
    } else if i % 10 == 7 {
        status(&id, 1, "Charging", "NoError", None)
    } else {
        status(&id, 1, "Available", "NoError", None)
    };
    ops.push(first);
    ops.push(status(&id, 2, "Available", "NoError", None));
    if i % 100 == 11 {
        ops.push(WriteOp::SetRegistration {
            id: id.clone(),
            registration: "Pending".into(),
        });
    }
    if i % 5 < 3 {
        ops.push(WriteOp::Connected {
            pile: id.clone(),
            node: "n1".into(),
            connection: i as i64 + 1,
        });
    }
    if i % 10 == 7 {
        ops.push(WriteOp::StartTransaction {
            pile: id,
            connector: 1,
            id_tag: "CARD".into(),
            meter_start: 1_000,
            reservation_id: None,
            time: now(),
        });
    }
    ops
}

async fn fill(repo: &Arc<dyn Repository>) {
    for chunk in (0..PILES).collect::<Vec<_>>().chunks(500) {
        let ops: Vec<WriteOp> = chunk.iter().flat_map(|i| pile_ops(*i)).collect();
        let results = repo.apply(&ops, now()).await.expect("the fleet is stored");
        let values: Vec<WriteOp> = ops
            .iter()
            .zip(&results)
            .filter_map(|(op, result)| match (op, result) {
                (
                    WriteOp::StartTransaction { pile, .. },
                    WriteResult::Started { transaction_id, .. },
                ) => Some(WriteOp::MeterValues {
                    pile: pile.clone(),
                    connector: 1,
                    transaction_id: Some(*transaction_id),
                    samples: (0..5)
                        .map(|k| MeterSample {
                            time: now() + k * 60_000,
                            sampled: format!(r#"[{{"value":"{}","unit":"Wh"}}]"#, 1_000 + k * 400),
                        })
                        .collect(),
                }),
                _ => None,
            })
            .collect();
        repo.apply(&values, now())
            .await
            .expect("meter values stored");
    }
}

/// Fetches `path` `RUNS` times (after three warm-up fetches); prints and returns the median
/// and the slowest, and the size of the answer.
async fn time(http: &reqwest::Client, base: &str, what: &str, path: &str, auth: (&str, &str)) {
    let fetch = || async {
        let r = http
            .get(format!("{base}{path}"))
            .header(auth.0, auth.1)
            .send()
            .await
            .expect("an answer");
        assert_eq!(r.status(), 200, "{path}");
        r.bytes().await.expect("a body").len()
    };
    for _ in 0..3 {
        fetch().await;
    }
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut bytes = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        bytes = fetch().await;
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {what} | `{path}` | {:.1} ms | {:.1} ms | {} kB |",
        ms(times[RUNS / 2]),
        ms(times[RUNS - 1]),
        bytes / 1000
    );
}

#[tokio::main]
async fn main() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-fleet-pages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = central::Options::new(&dir);
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.api_token = Some(TOKEN.into());
    let running = central::server::start(options)
        .await
        .expect("central starts");
    let t = Instant::now();
    fill(running.central.repo()).await;
    println!(
        "{PILES} piles stored in {:.1} s (SQLite, {})",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    let base = format!("http://{}", running.local_addr);
    let http = reqwest::Client::new();
    let bearer = format!("Bearer {TOKEN}");
    let cookie = format!("ocpile_token={TOKEN}");
    let api = ("authorization", bearer.as_str());
    let page = ("cookie", cookie.as_str());
    println!("| what | path | median | slowest of {RUNS} | answer |");
    println!("|---|---|---|---|---|");
    time(
        &http,
        &base,
        "dashboard, piles page 1 (rendered)",
        "/piles",
        page,
    )
    .await;
    time(
        &http,
        &base,
        "dashboard, a later page (rendered)",
        "/piles?limit=50&after=FLEET-15000",
        page,
    )
    .await;
    time(
        &http,
        &base,
        "API page, filtered",
        "/api/piles?limit=50&model=M2&firmware=fw-3&online=true",
        api,
    )
    .await;
    time(
        &http,
        &base,
        "API page, connector status",
        "/api/piles?limit=50&status=Charging",
        api,
    )
    .await;
    time(
        &http,
        &base,
        "API page, faulted",
        "/api/piles?limit=50&faulted=true",
        api,
    )
    .await;
    time(
        &http,
        &base,
        "API page, text",
        "/api/piles?limit=50&q=sn00123",
        api,
    )
    .await;
    time(&http, &base, "dashboard, home page (rendered)", "/", page).await;
    time(
        &http,
        &base,
        "API, the fleet at a glance",
        "/api/fleet",
        api,
    )
    .await;
    time(
        &http,
        &base,
        "API, every pile (no limit)",
        "/api/piles",
        api,
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
