//! The fleet over HTTP: `GET /api/piles` paged with a cursor and filtered, its bad queries
//! refused with a reason, `GET /api/fleet`, a running transaction's energy so far, and the
//! dashboard's home page and paged piles page as a browser receives them.

use std::sync::Arc;
use std::time::Duration;

use central::store::{BootInfo, MeterSample, Repository, WriteOp, WriteResult};
use serde_json::Value;

mod common;

use common::node::TOKEN;

async fn start() -> central::Running {
    central::server::start(common::node::options("fleet-pages", "fleet-pages"))
        .await
        .unwrap()
}

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

/// Thirty piles F-000..F-029: models M1, M2, M3 in turn, firmware 1.0 for the first ten and
/// 2.0 after; F-003 Faulted, F-005 Available with a GroundFailure and the FAQ 3.6 bits 0xC000,
/// F-007 Charging in a transaction at 2.5 kWh from a meter start of 1000 Wh; F-002 Pending.
/// The transaction's id.
async fn fill(repo: &Arc<dyn Repository>) -> i64 {
    let mut ops = Vec::new();
    for i in 0..30 {
        let id = format!("F-{i:03}");
        ops.push(WriteOp::RegisterPile {
            id: id.clone(),
            password_hash: None,
            security_profile: 0,
        });
        ops.push(WriteOp::Boot {
            pile: id.clone(),
            info: BootInfo {
                vendor: "Acme".into(),
                model: format!("M{}", i % 3 + 1),
                serial_number: Some(format!("SN{i:05}")),
                firmware_version: Some(if i < 10 { "1.0" } else { "2.0" }.into()),
                ..BootInfo::default()
            },
        });
        let (s, e, v) = match i {
            3 => ("Faulted", "ConnectorLockFailure", None),
            5 => ("Available", "GroundFailure", Some("0xC000")),
            7 => ("Charging", "NoError", None),
            _ => ("Available", "NoError", None),
        };
        ops.push(status(&id, 1, s, e, v));
    }
    ops.push(WriteOp::SetRegistration {
        id: "F-002".into(),
        registration: "Pending".into(),
    });
    ops.push(WriteOp::StartTransaction {
        pile: "F-007".into(),
        connector: 1,
        id_tag: "CARD".into(),
        meter_start: 1_000,
        reservation_id: None,
        time: now(),
    });
    let results = repo.apply(&ops, now()).await.unwrap();
    let Some(WriteResult::Started { transaction_id, .. }) = results.last() else {
        panic!("{results:?}")
    };
    let values = WriteOp::MeterValues {
        pile: "F-007".into(),
        connector: 1,
        transaction_id: Some(*transaction_id),
        samples: vec![MeterSample {
            time: now(),
            sampled:
                r#"[{"value":"2.5","measurand":"Energy.Active.Import.Register","unit":"kWh"}]"#
                    .into(),
        }],
    };
    repo.apply(&[values], now()).await.unwrap();
    *transaction_id
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path: &str, auth: (&str, String)) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header(auth.0, auth.1)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn api(&self, path: &str) -> (u16, Value) {
        let (code, body) = self
            .get(path, ("authorization", format!("Bearer {TOKEN}")))
            .await;
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn ok(&self, path: &str) -> Value {
        let (code, body) = self.api(path).await;
        assert_eq!(code, 200, "{path}: {body}");
        body
    }

    async fn page(&self, path: &str) -> (u16, String) {
        self.get(path, ("cookie", format!("ocpile_token={TOKEN}")))
            .await
    }
}

fn ids(piles: &Value) -> Vec<String> {
    piles
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of `query` with `limit`: the identities of each.
async fn pages(c: &Client, query: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/api/piles?limit={limit}{query}");
        if let Some(a) = &after {
            path.push_str(&format!("&after={a}"));
        }
        let page = c.ok(&path).await;
        let shown = ids(&page["piles"]);
        assert!(shown.len() <= limit, "{path}: {page}");
        after = page["next"].as_str().map(str::to_owned);
        if let Some(next) = &after {
            assert_eq!(
                Some(next),
                shown.last(),
                "{path}: the cursor is the last id"
            );
        }
        pages.push(shown);
        if after.is_none() {
            return pages;
        }
        assert!(pages.len() < 100, "{query}: the pages never end");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_paged_filtered_and_at_a_glance() {
    let running = start().await;
    let transaction = fill(running.central.repo()).await;
    let c = Client {
        http: reqwest::Client::new(),
        base: format!("http://{}", running.local_addr),
    };
    // F-010 connects: online.
    let _ws = common::pile::connect(running.local_addr, "F-010").await;
    let mut online = Value::Null;
    for _ in 0..100 {
        online = c.ok("/api/piles?online=true").await;
        if ids(&online) == ["F-010"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids(&online), ["F-010"], "{online}");
    assert_eq!(online[0]["connected"], true);

    // Without a limit: the plain array, as before.
    let all = c.ok("/api/piles").await;
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 30);
    assert_eq!(all[3]["connectors"][0]["status"], "Faulted", "{}", all[3]);
    // Pages of seven: every pile once, in order.
    let walked = pages(&c, "", 7).await;
    let sizes: Vec<usize> = walked.iter().map(Vec::len).collect();
    assert_eq!(sizes, [7, 7, 7, 7, 2]);
    assert_eq!(walked.concat(), all_ids);
    let page = c.ok("/api/piles?limit=7&after=F-006").await;
    assert_eq!(page["piles"][0]["id"], "F-007");
    assert_eq!(page["piles"][0]["connectors"][0]["status"], "Charging");

    // Filters, alone and together, paged.
    let expect =
        |from: &[usize]| -> Vec<String> { from.iter().map(|i| format!("F-{i:03}")).collect() };
    for (query, want) in [
        ("&status=Faulted", expect(&[3])),
        ("&status=Charging", expect(&[7])),
        ("&faulted=true", expect(&[3, 5])),
        ("&registration=Pending", expect(&[2])),
        ("&online=true", expect(&[10])),
        (
            "&model=M2&firmware=2.0",
            expect(&[10, 13, 16, 19, 22, 25, 28]),
        ),
        ("&q=sn0001", expect(&(10..20).collect::<Vec<_>>())),
        ("&q=nobody", vec![]),
    ] {
        assert_eq!(pages(&c, query, 3).await.concat(), want, "{query}");
    }
    assert_eq!(pages(&c, "&online=false", 100).await.concat().len(), 29);
    assert_eq!(pages(&c, "&faulted=false", 100).await.concat().len(), 28);
    // A filter without a limit: the array of every match.
    assert_eq!(ids(&c.ok("/api/piles?model=M3").await).len(), 10);

    // Bad queries: 400, with the reason.
    for (query, why) in [
        ("limit=0", "limit: 0 is not within 1 to 1000"),
        ("limit=100000", "limit: 100000 is not within 1 to 1000"),
        ("limit=many", "limit"),
        (
            "status=Broken",
            "status: \"Broken\" is not an OCPP 1.6 connector status",
        ),
        ("registration=Maybe", "registration"),
        ("online=maybe", "online"),
        ("after=F-001", "after: a cursor needs a limit"),
        ("colour=red", "colour"),
    ] {
        let (code, body) = c.api(&format!("/api/piles?{query}")).await;
        assert_eq!(code, 400, "{query}: {body}");
        let reason = body["error"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{query}: {body}");
    }

    // The fleet at a glance.
    let fleet = c.ok("/api/fleet").await;
    assert_eq!(
        (&fleet["piles"], &fleet["online"], &fleet["offline"]),
        (&Value::from(30), &Value::from(1), &Value::from(29)),
        "{fleet}"
    );
    assert_eq!(
        fleet["connectors"],
        serde_json::json!({"Available": 28, "Charging": 1, "Faulted": 1})
    );
    assert_eq!(
        fleet["faults"],
        serde_json::json!({"cp_error": 1, "relay_detection": 1})
    );
    assert_eq!(
        fleet["error_codes"],
        serde_json::json!({"ConnectorLockFailure": 1, "GroundFailure": 1})
    );
    assert_eq!(fleet["registration"]["Pending"], 1);
    assert_eq!(fleet["models"]["M2"], 10);
    assert_eq!(fleet["transactions_running"], 1);
    assert_eq!(fleet["energy_today_wh"], 1_500, "{fleet}");
    assert!(fleet["last_hour"].is_array());

    // The running transaction's energy so far.
    let t = c.ok(&format!("/api/transactions/{transaction}")).await;
    assert_eq!(
        (&t["energy_wh"], &t["energy_so_far_wh"]),
        (&Value::Null, &Value::from(1_500)),
        "{t}"
    );

    // The home page.
    let (code, home) = c.page("/").await;
    assert_eq!(code, 200, "{home}");
    for what in [
        "Piles online",
        r#"<a class="value" href="/piles?online=true">1</a>"#,
        r#"<a class="value" href="/piles?online=false">29</a>"#,
        r#"<a class="value" href="/transactions">1</a>"#,
        "1.5 kWh",
        "Messages per second",
        r#"<a href="/piles?status=Faulted">Faulted</a>"#,
        "cp_error",
        "GroundFailure",
        r#"<a href="/piles?model=M2">M2</a>"#,
    ] {
        assert!(home.contains(what), "the home page shows {what:?}: {home}");
    }
    // The piles page: one page, a link to the next.
    let (code, piles) = c.page("/piles?limit=7").await;
    assert_eq!(code, 200);
    assert_eq!(piles.matches("<tr data-pile=").count(), 7, "{piles}");
    assert!(piles.contains("limit=7&amp;after=F-006"), "{piles}");
    assert!(piles.contains("F-002"), "the inbox: {piles}");
    let (_, second) = c.page("/piles?limit=7&after=F-006").await;
    assert!(second.contains(r#"<tr data-pile="F-007""#), "{second}");
    assert!(second.contains("First page"), "{second}");
    let (_, faulted) = c.page("/piles?status=Faulted&q=&model=&online=").await;
    assert_eq!(faulted.matches("<tr data-pile=").count(), 1, "{faulted}");
    assert!(faulted.contains(r#"<tr data-pile="F-003""#), "{faulted}");
    assert!(!faulted.contains("Next page"), "{faulted}");
    let (code, bad) = c.page("/piles?status=Broken").await;
    assert_eq!(code, 400);
    assert!(bad.contains("is not an OCPP 1.6 connector status"), "{bad}");
    // Energy so far on the transactions page and the pile's page.
    let (_, txs) = c.page("/transactions").await;
    assert!(txs.contains("1500 so far"), "{txs}");
    let (_, pile) = c.page("/piles/F-007").await;
    assert!(pile.contains("Running transactions"), "{pile}");
    assert!(pile.contains("1500 so far"), "{pile}");
}
