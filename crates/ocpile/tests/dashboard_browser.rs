//! The dashboard in a real browser: Debian's chromium, headless, driven through chromedriver
//! (WebDriver) against `ocpile central` and one of our piles (real binaries). It logs in,
//! loads every page, sees the fleet at a glance on the home page with a session running and
//! its energy so far, follows the piles online and the pages of the piles page, sees the pile
//! connected, changes its HeartbeatInterval through the vendor
//! form and finds the new value read back, starts a campaign and sees it finish (the page
//! updates itself over server-sent events), and saves a screenshot of each page under
//! `target/screenshots/`. `scripts/test.sh` installs chromium and chromium-driver and runs it.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::central::{start_card_session, start_central, until_meter_values, TOKEN};
use common::wire::{set, state_until};
use common::{http, start_pile_with_control, state_dir, WAIT};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// chromedriver on a port of its own choosing; killed when dropped.
struct Driver(Child, String);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> Driver {
    let bin = std::env::var("OCPILE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let mut child = Command::new(&bin)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{bin} does not start ({e}): apt-get install chromium chromium-driver")
        });
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                let _ = tx.send(rest.trim_end_matches('.').trim().to_owned());
            }
        }
    });
    let port = rx.recv_timeout(WAIT).expect("chromedriver prints its port");
    Driver(child, format!("http://127.0.0.1:{port}"))
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let chromium = std::env::var("OCPILE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.1)
        .await
        .expect("a chromium session")
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Waits until the page's text holds `what` (the live updates or a reload bring it).
async fn until_text(c: &Client, selector: &str, what: &str) -> String {
    let mut last = String::new();
    for _ in 0..(WAIT.as_millis() / 100) {
        if let Ok(e) = c.find(Locator::Css(selector)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(what) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{selector} never showed {what:?}; last: {last:?}");
}

/// Clicks what `selector` finds; found again when the live updates replaced it meanwhile (a
/// stale element).
async fn click(c: &Client, selector: &str) {
    let mut last = String::new();
    for _ in 0..(WAIT.as_millis() / 100) {
        match c.find(Locator::Css(selector)).await {
            Ok(e) => match e.click().await {
                Ok(()) => return,
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{selector} could not be clicked: {last}");
}

/// The piles the piles page lists, in order (read again if the live updates replaced the
/// table meanwhile).
async fn listed_piles(c: &Client) -> Vec<String> {
    'again: for _ in 0..(WAIT.as_millis() / 100) {
        let mut shown = Vec::new();
        for row in c.find_all(Locator::Css("tr[data-pile]")).await.unwrap() {
            match row.attr("data-pile").await {
                Ok(Some(id)) => shown.push(id),
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'again;
                }
            }
        }
        return shown;
    }
    panic!("the piles table kept changing");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs chromium and chromedriver; scripts/test.sh installs them and runs this test"]
async fn the_dashboard_in_chromium() {
    let data = state_dir("dashboard-central");
    let central = start_central(&data, None, &["--admission", "open"]);
    let (_pile, control) = start_pile_with_control(
        "UI-PILE",
        &central.ocpp_url(),
        &state_dir("dashboard-pile"),
        &[],
    );
    central
        .until("/api/piles/UI-PILE/vendor", "the vendor keys read", |v| {
            v["heartbeat_interval"].is_number()
        })
        .await;
    // A short session, for the transactions pages and the chart.
    set(&control, "MeterValueSampleInterval", "1").await;
    set(&control, "VendorDirectWorkMode", "false").await;
    central.accept_id_tag("CARD1").await;
    let tx = start_card_session(&central, &control, "CARD1").await;
    until_meter_values(&central, tx, 3).await;
    let so_far = central
        .until(&format!("/api/transactions/{tx}"), "energy so far", |t| {
            t["energy_so_far_wh"].is_i64()
        })
        .await;
    assert!(so_far["energy_wh"].is_null(), "{so_far}");
    // Three piles that never connect, for the pages of the piles page.
    for extra in ["UI-EXTRA-1", "UI-EXTRA-2", "UI-EXTRA-3"] {
        central
            .ok("POST", "/api/piles", Some(json!({"id": extra})))
            .await;
    }
    let (code, image) = central
        .post_bytes("/api/firmware?name=ui-fw-2.bin", &[1u8; 4096])
        .await;
    assert_eq!(code, 201, "{image}");
    let base = format!("http://{}", central.addr);

    let driver = chromedriver();
    let profile = state_dir("dashboard-chromium");
    std::fs::create_dir_all(&profile).unwrap();
    let c = browser(&driver, &profile).await;

    // Without the cookie: the login page; a wrong token is refused.
    c.goto(&base).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    screenshot(&c, "login").await;
    let form = c.form(Locator::Css("form")).await.unwrap();
    form.set_by_name("token", "wrong").await.unwrap();
    form.submit().await.unwrap();
    until_text(&c, "p.error", "not the token").await;
    let form = c.form(Locator::Css("form")).await.unwrap();
    form.set_by_name("token", TOKEN).await.unwrap();
    form.submit().await.unwrap();

    // The home page: the fleet at a glance, with the running session.
    until_text(&c, "#online .value", "1").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/");
    until_text(&c, "#offline .value", "3").await;
    until_text(&c, "#running .value", "1").await;
    until_text(&c, "#connectors", "Charging").await;
    until_text(&c, "#models", "M3G3").await;
    until_text(&c, "#rate .value", ".").await;
    screenshot(&c, "home").await;
    // The running transaction with its energy so far.
    c.goto(&format!("{base}/transactions")).await.unwrap();
    until_text(&c, "#live", "so far").await;
    screenshot(&c, "transactions-running").await;
    let card = json!({"idTag": "CARD1", "connector": 1});
    http(&control, "POST", "/card", Some(card)).await;
    state_until(&control, "the stop sent", |s| {
        s["outbox"] == 0 && s["connectors"][0]["transaction"].is_null()
    })
    .await;
    http(&control, "POST", "/connectors/1/unplug", None).await;

    // From the home page's figure to the piles online: ours, with its model and firmware.
    c.goto(&base).await.unwrap();
    click(&c, "#online a.value").await;
    let row = until_text(&c, "tr[data-pile='UI-PILE']", "online").await;
    assert!(row.contains("M3G3"), "{row}");
    assert!(row.contains(env!("CARGO_PKG_VERSION")), "{row}");
    assert_eq!(c.current_url().await.unwrap().query(), Some("online=true"));
    assert_eq!(listed_piles(&c).await, ["UI-PILE"], "only the pile online");
    // Pages of two: the first, then the next through its link.
    c.goto(&format!("{base}/piles?limit=2")).await.unwrap();
    assert_eq!(listed_piles(&c).await, ["UI-EXTRA-1", "UI-EXTRA-2"]);
    click(&c, "a.next").await;
    until_text(&c, "tr[data-pile='UI-PILE']", "online").await;
    assert_eq!(listed_piles(&c).await, ["UI-EXTRA-3", "UI-PILE"]);
    assert!(
        c.find(Locator::Css("a.next")).await.is_err(),
        "the last page"
    );
    c.find(Locator::Css("a.first")).await.unwrap();
    screenshot(&c, "piles").await;

    // The pile's page: HeartbeatInterval changed through the vendor form, read back.
    c.goto(&format!("{base}/piles/UI-PILE")).await.unwrap();
    let input = c
        .find(Locator::Css("input[name='heartbeat_interval']"))
        .await
        .unwrap();
    assert_eq!(input.prop("value").await.unwrap().as_deref(), Some("300"));
    input.clear().await.unwrap();
    input.send_keys("900").await.unwrap();
    c.find(Locator::Css("form.vendor button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&c, "#flash", "HeartbeatInterval: Accepted").await;
    let shown = c
        .find(Locator::Css("input[name='heartbeat_interval']"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(shown.as_deref(), Some("900"));
    let config = central
        .ok("GET", "/api/piles/UI-PILE/configuration", None)
        .await;
    let hb: Vec<&Value> = config["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["key"] == "HeartbeatInterval")
        .collect();
    assert_eq!(hb[0]["value"], "900", "read back from the pile");
    let fault_bits = c
        .find_all(Locator::Css("input[name='fault_mask']"))
        .await
        .unwrap();
    assert_eq!(fault_bits.len(), oem::FAULT_MASK.bits.len());
    // A command button: its answer shown.
    c.find(Locator::XPath("//button[text()='Clear cache']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&c, "#flash", "ClearCache: answered").await;
    let log = until_text(&c, "#messages", "ClearCache").await;
    assert!(log.contains("BootNotification"), "the message log");
    screenshot(&c, "pile").await;

    // Transactions, and the chart of ours.
    c.goto(&format!("{base}/transactions")).await.unwrap();
    until_text(&c, "#past", "UI-PILE").await;
    screenshot(&c, "transactions").await;
    c.goto(&format!("{base}/transactions/{tx}")).await.unwrap();
    let polylines = c
        .find_all(Locator::Css("svg.chart polyline"))
        .await
        .unwrap();
    assert!(!polylines.is_empty(), "a chart with a line");
    screenshot(&c, "transaction").await;

    // Refused handshakes: a stranger without the subprotocol.
    common::central::handshake_status(&central.addr, "/ocpp/STRANGER", "").await;
    c.goto(&format!("{base}/handshakes")).await.unwrap();
    until_text(&c, "#refused", "STRANGER").await;
    screenshot(&c, "handshakes").await;

    // A campaign, created through the form, followed live until it finishes.
    c.goto(&format!("{base}/campaigns")).await.unwrap();
    c.find(Locator::Css("input[name='firmware']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("input[name='pile'][value='UI-PILE']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("form.campaign button[type='submit']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until_text(&c, "#flash", "campaign started").await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .starts_with("/campaigns/"));
    // No reload from here: the page updates itself.
    let result = until_text(&c, "tr[data-pile='UI-PILE'] td.result", "succeeded").await;
    assert!(!result.contains("failed"), "{result}");
    until_text(&c, "b.state", "finished").await;
    let refreshed = c
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .attr("data-refreshed")
        .await
        .unwrap();
    assert!(refreshed.is_some(), "the live script refreshed the page");
    screenshot(&c, "campaign").await;
    c.goto(&format!("{base}/campaigns")).await.unwrap();
    until_text(&c, "#campaigns", "finished").await;
    screenshot(&c, "campaigns").await;
    let view = central.ok("GET", "/api/piles/UI-PILE", None).await;
    assert_eq!(view["firmware_version"], "ui-fw-2.bin");
    c.close().await.unwrap();
}
