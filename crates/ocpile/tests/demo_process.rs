//! `ocpile demo` (the README's first command) as a user runs it: the central system, its
//! virtual piles and the dashboard come up, sessions start, one pile waits in the inbox, and
//! Ctrl-C (SIGINT) stops it all cleanly; a second run takes up the same data. A campaign of the
//! image the demo prepares upgrades its piles; its log, a pipe here, carries no colour codes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{http_with, state_dir, WAIT};
use serde_json::Value;
use tokio::time::timeout;

/// Starts the demo; the process, the dashboard's address and the token it printed.
fn start_demo(
    data: &std::path::Path,
) -> (
    std::process::Child,
    String,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    start_demo_with(data, 3, "warn")
}

/// The same with `piles` piles and this RUST_LOG.
fn start_demo_with(
    data: &std::path::Path,
    piles: u32,
    log: &str,
) -> (
    std::process::Child,
    String,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocpile"))
        .args(["demo", "--piles", &piles.to_string()])
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ocpile demo starts");
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = loop {
        let line = rx
            .recv_timeout(WAIT)
            .expect("the demo prints its dashboard");
        if line.starts_with("dashboard: ") {
            break line;
        }
    };
    let url = line.trim_start_matches("dashboard: http://").to_owned();
    let (addr, token) = url.split_once("/?token=").unwrap();
    (child, addr.to_owned(), token.to_owned(), rx)
}

fn interrupt(child: &mut std::process::Child, lines: &std::sync::mpsc::Receiver<String>) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "the demo stops cleanly on SIGINT: {exit:?}");
    let said: Vec<String> = lines.try_iter().collect();
    assert!(
        said.iter().any(|l| l.starts_with("ocpile demo: stopped")),
        "{said:?}"
    );
}

/// Polls the API's `path` until `done` holds, for at most `limit`.
async fn until_api(
    addr: &str,
    token: &str,
    path: &str,
    limit: std::time::Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let auth = format!("Authorization: Bearer {token}\r\n");
    let mut last = Value::Null;
    let found = timeout(limit, async {
        loop {
            let (_, body) = http_with(addr, "GET", path, None, &auth).await;
            if done(&body) {
                return body;
            }
            last = body;
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("{path} within {limit:?}; last: {last}"))
}

async fn until_piles(addr: &str, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let auth = format!("Authorization: Bearer {token}\r\n");
    timeout(WAIT, async {
        loop {
            let (_, piles) = http_with(addr, "GET", "/api/piles", None, &auth).await;
            if let Some(p) = piles.as_array() {
                if done(p) {
                    return p.clone();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the demo's piles")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_runs_its_piles_serves_the_dashboard_and_stops_on_sigint() {
    let data = state_dir("demo");
    let (mut child, addr, token, lines) = start_demo(&data);
    let piles = until_piles(&addr, &token, |p| {
        p.len() == 4 && p.iter().all(|p| p["connected"] == true)
    })
    .await;
    let pending: Vec<&Value> = piles
        .iter()
        .filter(|p| p["registration"] == "Pending")
        .collect();
    assert_eq!(pending.len(), 1, "one pile in the approval inbox");
    assert_eq!(pending[0]["id"], "DEMO-NEW");
    // The printed link logs in to the dashboard.
    let (code, _) = http_with(&addr, "GET", &format!("/?token={token}"), None, "").await;
    assert_eq!(code, 303);
    let cookie = format!("Cookie: ocpile_token={token}\r\n");
    let (code, _) = http_with(&addr, "GET", "/", None, &cookie).await;
    assert_eq!(code, 200);
    // An image is ready for a campaign.
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (_, images) = http_with(&addr, "GET", "/api/firmware", None, &auth).await;
    assert_eq!(images.as_array().unwrap().len(), 1, "{images}");
    // Sessions start (a step every 3 s).
    timeout(WAIT, async {
        loop {
            let (_, txs) = http_with(&addr, "GET", "/api/transactions", None, &auth).await;
            if txs.as_array().is_some_and(|t| !t.is_empty()) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("a session starts");
    // The demo's site: its piles (all three here), a session's grant, and its page.
    let (_, sites) = http_with(&addr, "GET", "/api/sites", None, &auth).await;
    let sites = sites.as_array().unwrap().clone();
    assert_eq!(sites.len(), 1, "{sites:?}");
    assert_eq!(
        (
            &sites[0]["name"],
            &sites[0]["capacity_a"],
            &sites[0]["piles"]
        ),
        (
            &serde_json::json!("Demo site"),
            &serde_json::json!(40.0),
            &serde_json::json!([
                {"pile": "DEMO-01", "connector": null},
                {"pile": "DEMO-02", "connector": null},
                {"pile": "DEMO-03", "connector": null}
            ])
        )
    );
    let site = format!("/api/sites/{}", sites[0]["id"]);
    until_api(&addr, &token, &site, WAIT, |s| {
        s["sessions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["granted_a"].as_f64().is_some()))
    })
    .await;
    let page = format!("/sites/{}", sites[0]["id"]);
    let (code, _) = http_with(&addr, "GET", &page, None, &cookie).await;
    assert_eq!(code, 200, "the site's page");
    interrupt(&mut child, &lines);

    // Again, on the same data: the same piles, the same image, no new registration.
    let (mut child, addr, token2, lines) = start_demo(&data);
    assert_eq!(token2, token, "the token is kept in the data directory");
    until_piles(&addr, &token, |p| {
        p.len() == 4 && p.iter().all(|p| p["connected"] == true)
    })
    .await;
    let (_, images) = http_with(&addr, "GET", "/api/firmware", None, &auth).await;
    assert_eq!(images.as_array().unwrap().len(), 1);
    let (_, sites) = http_with(&addr, "GET", "/api/sites", None, &auth).await;
    assert_eq!(sites.as_array().unwrap().len(), 1, "{sites}");
    interrupt(&mut child, &lines);
}

/// The statuses of connector 0 in a status history, oldest first.
fn pile_statuses(history: &Value) -> Vec<String> {
    let mut statuses: Vec<(String, String)> = history
        .as_array()
        .map(|h| {
            h.iter()
                .filter(|s| s["connector"] == 0)
                .map(|s| {
                    (
                        s["time"].as_str().unwrap_or_default().to_owned(),
                        s["status"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    statuses.sort();
    statuses.into_iter().map(|(_, s)| s).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_of_the_demos_image_upgrades_five_demo_piles() {
    let data = state_dir("demo-campaign");
    let (mut child, addr, token, lines) = start_demo_with(&data, 5, "info");
    until_piles(&addr, &token, |p| {
        p.len() == 6 && p.iter().all(|p| p["connected"] == true)
    })
    .await;
    let auth = format!("Authorization: Bearer {token}\r\n");
    let (_, images) = http_with(&addr, "GET", "/api/firmware", None, &auth).await;
    let image = &images[0];
    let version = image["version"].as_str().unwrap().to_owned();
    let ids: Vec<String> = (1..=5).map(|n| format!("DEMO-{n:02}")).collect();
    let (code, campaign) = http_with(
        &addr,
        "POST",
        "/api/campaigns",
        Some(serde_json::json!({"firmware": [image["id"]], "piles": ids})),
        &auth,
    )
    .await;
    assert_eq!(code, 201, "{campaign}");
    assert_eq!(campaign["refused"], serde_json::json!([]), "{campaign}");
    assert_eq!(campaign["retries"], 2, "{campaign}");
    let path = format!("/api/campaigns/{}", campaign["id"]);
    // Piles in a session wait for its end; the demo ends its sessions by itself.
    let done = until_api(
        &addr,
        &token,
        &path,
        std::time::Duration::from_secs(300),
        |c| c["state"] == "finished",
    )
    .await;
    assert_eq!(done["counts"]["succeeded"], 5, "{done}");
    for r in done["piles"].as_array().unwrap() {
        assert_eq!(r["result"], "succeeded", "{r}");
        assert_eq!(r["to_version"], version.as_str(), "{r}");
        assert_eq!(r["failed_attempts"], 0, "{r}");
        assert_eq!(r["error"], Value::Null, "{r}");
    }
    for id in &ids {
        let view = until_api(&addr, &token, &format!("/api/piles/{id}"), WAIT, |p| {
            p["connected"] == true
        })
        .await;
        assert_eq!(view["firmware_version"], version.as_str(), "{view}");
        // Unavailable while it upgraded (nothing else makes a demo pile Unavailable) or, when
        // the demo's random fault struck it meanwhile, Faulted (a fault outranks
        // Unavailable); Available again after it.
        until_api(
            &addr,
            &token,
            &format!("/api/piles/{id}/status-history?limit=1000"),
            std::time::Duration::from_secs(60),
            |h| {
                let seen = pile_statuses(h);
                seen.iter()
                    .position(|s| s == "Unavailable" || s == "Faulted")
                    .is_some_and(|u| seen[u..].iter().any(|s| s == "Available"))
            },
        )
        .await;
    }
    // The log went to a pipe: plain text, no terminal colour codes.
    let logged: Vec<String> = lines.try_iter().collect();
    interrupt(&mut child, &lines);
    assert!(
        logged.iter().any(|l| l.contains("INFO")),
        "the demo logged at info: {logged:?}"
    );
    assert!(
        logged.iter().all(|l| !l.contains('\u{1b}')),
        "an escape code: {:?}",
        logged.iter().find(|l| l.contains('\u{1b}'))
    );
}
