//! A site carried out on its piles, as two raw websocket piles see it: the fail-safe
//! TxDefaultProfile at boot, the capacity shared with TxProfiles (the other lowered before the
//! newcomer is raised), a capacity lowered through the API, a departure's share given back, a
//! RemoteStartTransaction that carries a profile, a pile taken off the site cleared of the
//! site's profiles, every profile valid by the official schema, and each decision in the
//! allocations log and the site's view; in a cluster, the site run by one node for a pile on
//! the other, and a node that lost the site's lease without noticing writing and sending
//! nothing for it.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use common::node::{api, options, start};
use common::pile::{connect, Ws};

mod common;

/// The official schema of a CALL's payload.
fn schema(action: &str) -> jsonschema::Validator {
    let dir = std::env::var("OCPP16_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ocpp16")
        });
    let text = std::fs::read_to_string(dir.join("schemas").join(format!("{action}.json")))
        .expect("the OCPP 1.6 schemas (set OCPP16_DIR)");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&serde_json::from_str(&text).unwrap())
        .unwrap()
}

/// A pile on a raw websocket: answers the central's CALLs (the configuration it reads, any
/// profile Accepted) and keeps the profiles it was sent.
struct Pile {
    ws: Ws,
    next: u32,
    /// The SetChargingProfile, RemoteStartTransaction and ClearChargingProfile payloads
    /// received, in order.
    received: Vec<(String, Value)>,
    set_schema: jsonschema::Validator,
    start_schema: jsonschema::Validator,
    clear_schema: jsonschema::Validator,
}

impl Pile {
    async fn connect(addr: std::net::SocketAddr, id: &str) -> Pile {
        let mut pile = Pile {
            ws: connect(addr, id).await,
            next: 0,
            received: Vec::new(),
            set_schema: schema("SetChargingProfile"),
            start_schema: schema("RemoteStartTransaction"),
            clear_schema: schema("ClearChargingProfile"),
        };
        let boot = pile
            .call(
                "BootNotification",
                json!({"chargePointVendor": "V", "chargePointModel": "M"}),
            )
            .await;
        assert_eq!(boot["status"], "Accepted");
        pile
    }

    /// Reads the next frame: answers a CALL (and returns None), or returns a CALLRESULT.
    async fn read(&mut self) -> Option<Value> {
        let frame = loop {
            let m = tokio::time::timeout(Duration::from_secs(20), self.ws.next())
                .await
                .expect("a frame within 20 s")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                break serde_json::from_str::<Value>(t.as_str()).unwrap();
            }
        };
        if frame[0] != 2 {
            return Some(frame);
        }
        let (id, action, payload) = (frame[1].clone(), frame[2].as_str().unwrap(), &frame[3]);
        let answer = match action {
            "GetConfiguration" => json!({"configurationKey": [
                {"key": "NumberOfConnectors", "readonly": true, "value": "1"},
                {"key": "ChargeProfileMaxStackLevel", "readonly": true, "value": "8"},
                {"key": "ChargingScheduleAllowedChargingRateUnit", "readonly": true, "value": "Current"},
                {"key": "MaxChargingProfilesInstalled", "readonly": true, "value": "16"},
            ]}),
            "SetChargingProfile" | "RemoteStartTransaction" | "ClearChargingProfile" => {
                let schema = match action {
                    "SetChargingProfile" => &self.set_schema,
                    "RemoteStartTransaction" => &self.start_schema,
                    _ => &self.clear_schema,
                };
                let errors: Vec<String> =
                    schema.iter_errors(payload).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{action} {payload}: {errors:?}");
                self.received.push((action.to_owned(), payload.clone()));
                json!({"status": "Accepted"})
            }
            other => panic!("unexpected {other}"),
        };
        self.ws
            .send(Message::text(json!([3, id, answer]).to_string()))
            .await
            .unwrap();
        None
    }

    /// Sends a CALL and returns its CALLRESULT's payload, answering the central meanwhile.
    async fn call(&mut self, action: &str, payload: Value) -> Value {
        self.next += 1;
        let id = format!("m{}", self.next);
        let frame = json!([2, id, action, payload]).to_string();
        self.ws.send(Message::text(frame)).await.unwrap();
        loop {
            if let Some(answer) = self.read().await {
                assert_eq!(answer[0], 3, "{action}: {answer}");
                if answer[1] == id.as_str() {
                    return answer[2].clone();
                }
            }
        }
    }

    /// Serves the central until it sends a SetChargingProfile of this purpose and limit.
    async fn until_profile(&mut self, purpose: &str, limit: f64) -> Value {
        loop {
            if let Some((_, p)) = self.received.iter().find(|(a, p)| {
                a == "SetChargingProfile"
                    && p["csChargingProfiles"]["chargingProfilePurpose"] == purpose
                    && p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]
                        ["limit"]
                        == json!(limit)
            }) {
                let p = p.clone();
                self.received.clear();
                return p;
            }
            self.read().await;
        }
    }

    /// Serves the central for `span`; the SetChargingProfile payloads it sent meanwhile.
    async fn serve_for(&mut self, span: Duration) -> Vec<Value> {
        let until = tokio::time::Instant::now() + span;
        while tokio::time::timeout_at(until, self.read()).await.is_ok() {}
        let sent = self
            .received
            .iter()
            .filter(|(a, _)| a == "SetChargingProfile")
            .map(|(_, p)| p.clone())
            .collect();
        self.received.clear();
        sent
    }

    async fn start(&mut self, tag: &str) -> i64 {
        let started = self
            .call(
                "StartTransaction",
                json!({"connectorId": 1, "idTag": tag, "meterStart": 0,
                       "timestamp": chrono::Utc::now().to_rfc3339()}),
            )
            .await;
        started["transactionId"].as_i64().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_shares_its_capacity_among_its_piles_with_charging_profiles() {
    let mut o = options("sites-runtime", "sites-runtime");
    o.command_timeout = Duration::from_secs(10);
    let running = start(o).await;
    let addr = running.local_addr;
    let (status, site) = api(
        addr,
        "POST",
        "/api/sites",
        Some(json!({"name": "Yard", "capacity_a": 32, "failsafe_a": 6, "settle_s": 1})),
    )
    .await;
    assert_eq!(status, 201, "{site}");
    let id = site["id"].as_i64().unwrap();
    for pile in ["YARD-1", "YARD-2"] {
        let (status, _) = api(addr, "POST", "/api/piles", Some(json!({"id": pile}))).await;
        assert_eq!(status, 201);
        let (status, _) = api(addr, "PUT", &format!("/api/sites/{id}/piles/{pile}"), None).await;
        assert_eq!(status, 200);
    }

    // At boot: the fail-safe for every connector.
    let mut one = Pile::connect(addr, "YARD-1").await;
    let default = one.until_profile("TxDefaultProfile", 6.0).await;
    assert_eq!(default["connectorId"], 0);
    assert_eq!(default["csChargingProfiles"]["stackLevel"], 8);
    let mut two = Pile::connect(addr, "YARD-2").await;
    two.until_profile("TxDefaultProfile", 6.0).await;

    // One session: all but the other pile's fail-safe (32 - 6).
    let t1 = one.start("CARD-1").await;
    let p = one.until_profile("TxProfile", 26.0).await;
    assert_eq!(p["csChargingProfiles"]["transactionId"], t1);
    assert_eq!(p["connectorId"], 1);

    // A second: the first lowered to 16 before the second is raised to 16.
    let t2 = two.start("CARD-2").await;
    one.until_profile("TxProfile", 16.0).await;
    let p = two.until_profile("TxProfile", 16.0).await;
    assert_eq!(p["csChargingProfiles"]["transactionId"], t2);
    let meter = json!({"connectorId": 1, "transactionId": t2, "meterValue": [{
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "sampledValue": [{"value": "15.2", "measurand": "Current.Import", "unit": "A"}]}]});
    two.call("MeterValues", meter).await;

    let sessions = common::wait::until(Duration::from_secs(10), "the site's view", || async {
        let (_, site) = api(addr, "GET", &format!("/api/sites/{id}"), None).await;
        let s = site["sessions"].clone();
        let done = s.as_array().is_some_and(|a| {
            a.len() == 2 && a.iter().all(|x| x["granted_a"] == 16.0) && a[1]["measured_a"] == 15.2
        });
        done.then_some(s)
    })
    .await;
    assert_eq!(sessions[0]["transaction"], t1);
    assert_eq!(sessions[0]["queued"], false);

    // /metrics: the site's capacity, what its sessions were granted and what they draw.
    let (status, text) = api(addr, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap();
    for (gauge, value) in [
        ("capacity", "32.0"),
        ("granted", "32.0"),
        ("measured", "15.2"),
    ] {
        let series = format!("ocpile_site_{gauge}_amperes{{");
        let site = format!("site=\"{id}\"");
        assert!(
            text.lines().any(|l| l.starts_with(&series)
                && l.contains(&site)
                && l.contains("site_name=\"Yard\"")
                && l.ends_with(&format!("}} {value}"))),
            "{gauge} {value} in {text}"
        );
    }

    // The site's page in the dashboard: its sessions, their grants and draws, and the chart.
    let dashboard = |path: String| async move {
        let answer = reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .header("cookie", format!("ocpile_token={}", common::node::TOKEN))
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    let (status, html) = dashboard("/sites".into()).await;
    assert_eq!(status, 200);
    assert!(
        html.contains(&format!("<a href=\"/sites/{id}\">Yard</a>")),
        "{html}"
    );
    assert!(html.contains("<a href=\"/sites\">Sites</a>"), "{html}");
    let (status, html) = dashboard(format!("/sites/{id}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<h1>Site Yard</h1>"), "{html}");
    for t in [t1, t2] {
        let link = format!("<a href=\"/transactions/{t}\">{t}</a>");
        assert!(html.contains(&link), "{link} in {html}");
    }
    assert!(html.contains("<td class=\"measured\">15.2</td>"), "{html}");
    assert_eq!(
        html.matches("<td class=\"granted\">16.0</td>").count(),
        2,
        "{html}"
    );
    for line in ["capacity", "granted", "measured"] {
        let polyline = format!("<polyline class=\"{line}\"");
        assert!(html.contains(&polyline), "{polyline} in {html}");
    }

    let (_, log) = api(addr, "GET", &format!("/api/sites/{id}/allocations"), None).await;
    let log = log.as_array().unwrap();
    assert!(
        log.iter().any(|d| d["transaction"] == t1
            && d["granted_a"] == 16.0
            && d["why"] == "arrival: equal share among 2 sessions of group 0"),
        "{log:?}"
    );

    // The capacity lowered through the API: both lowered at once.
    let (status, _) = api(
        addr,
        "PATCH",
        &format!("/api/sites/{id}"),
        Some(json!({"capacity_a": 24})),
    )
    .await;
    assert_eq!(status, 200);
    one.until_profile("TxProfile", 12.0).await;
    two.until_profile("TxProfile", 12.0).await;

    // The first leaves: the second gets its share back (all but the idle connector's
    // fail-safe), once its settling time has passed.
    let stop = json!({"transactionId": t1, "meterStop": 1000,
        "timestamp": chrono::Utc::now().to_rfc3339()});
    one.call("StopTransaction", stop).await;
    two.until_profile("TxProfile", 18.0).await;

    // A remote start on a pile of the site carries a TxProfile at the fail-safe.
    let remote = tokio::spawn(async move {
        api(
            addr,
            "POST",
            "/api/piles/YARD-1/commands/RemoteStartTransaction",
            Some(json!({"idTag": "CARD-3", "connectorId": 1})),
        )
        .await
    });
    loop {
        if let Some((_, p)) = one
            .received
            .iter()
            .find(|(a, _)| a == "RemoteStartTransaction")
        {
            let profile = &p["chargingProfile"];
            assert_eq!(profile["chargingProfilePurpose"], "TxProfile");
            assert_eq!(
                profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
                6.0
            );
            assert!(profile["transactionId"].is_null());
            break;
        }
        one.read().await;
    }
    let (status, answer) = remote.await.unwrap();
    assert_eq!(
        (status, &answer["response"]["status"]),
        (200, &json!("Accepted"))
    );

    // Taken off the site: the site's profiles are cleared (its default and its connector's).
    one.received.clear();
    let (status, _) = api(
        addr,
        "DELETE",
        &format!("/api/sites/{id}/piles/YARD-1"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let cleared = loop {
        let ids: Vec<Value> = one
            .received
            .iter()
            .filter(|(a, _)| a == "ClearChargingProfile")
            .map(|(_, p)| p["id"].clone())
            .collect();
        if ids.len() == 2 {
            break ids;
        }
        one.read().await;
    };
    assert_eq!(cleared, [json!(18_000), json!(18_001)]);
}

/// In a cluster, a site runs on the node that holds its lease; its piles may be connected to
/// another node, whose commands and records reach it through NATS and the shared store.
#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_the_site_runs_on_one_node_and_reaches_piles_on_the_other() {
    let db = common::database_url("sites", "cluster");
    let node = |name: &str| {
        let mut o = common::node::cluster_options(
            &format!("sites-cluster-{name}"),
            name,
            &db,
            Duration::from_secs(3),
        );
        o.command_timeout = Duration::from_secs(5);
        start(o)
    };
    let a = node("a").await;
    let b = node("b").await;
    let (status, site) = api(
        a.local_addr,
        "POST",
        "/api/sites",
        Some(json!({"name": "Shared", "capacity_a": 20, "failsafe_a": 6})),
    )
    .await;
    assert_eq!(status, 201, "{site}");
    let id = site["id"].as_i64().unwrap();
    let (status, _) = api(
        a.local_addr,
        "POST",
        "/api/piles",
        Some(json!({"id": "SHARED-1"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = api(
        a.local_addr,
        "PUT",
        &format!("/api/sites/{id}/piles/SHARED-1"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // The pile connects to the node that does not run the site.
    let lease = format!("site:{id}");
    let holder = common::wait::until(Duration::from_secs(15), "the site's lease", || async {
        a.central
            .repo()
            .lease_holder(&lease, central::store::At::Database)
            .await
            .unwrap()
    })
    .await;
    let (other, here) = if holder == "a" { (&b, &a) } else { (&a, &b) };
    let mut pile = Pile::connect(other.local_addr, "SHARED-1").await;
    pile.until_profile("TxDefaultProfile", 6.0).await;
    let t = pile.start("CARD-1").await;
    let p = pile.until_profile("TxProfile", 20.0).await;
    assert_eq!(p["csChargingProfiles"]["transactionId"], t);

    // Both nodes show the decision.
    for node in [here, other] {
        let (_, log) = api(
            node.local_addr,
            "GET",
            &format!("/api/sites/{id}/allocations"),
            None,
        )
        .await;
        assert!(
            log.as_array()
                .unwrap()
                .iter()
                .any(|d| d["transaction"] == t && d["granted_a"] == 20.0),
            "{log}"
        );
    }
    // The commands went through the pile's node, recorded like the API's.
    let (_, commands) = api(here.local_addr, "GET", "/api/piles/SHARED-1/commands", None).await;
    let profiles = commands
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "SetChargingProfile" && c["outcome"] == "response")
        .count();
    assert!(profiles >= 2, "{commands}");
}

/// In a cluster, a node whose lease of a site passed to another holder in the store, while
/// its keeper still counts on it (it renews every third of its TTL), finds its decisions
/// refused by the lease's fence: a session that starts then is neither recorded nor sent a
/// profile. Once the lease is free and the node takes it again, the site runs from the store.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_that_lost_a_sites_lease_records_and_sends_nothing_for_it() {
    use central::site::runtime::{lease_name, EVERY};
    use central::store::At;

    let db = common::database_url("sites", "fenced");
    let mut o = common::node::cluster_options("sites-fenced", "a", &db, Duration::from_secs(30));
    o.command_timeout = Duration::from_secs(5);
    let a = start(o).await;
    let (status, site) = api(
        a.local_addr,
        "POST",
        "/api/sites",
        Some(json!({"name": "Fenced", "capacity_a": 20, "failsafe_a": 6})),
    )
    .await;
    assert_eq!(status, 201, "{site}");
    let id = site["id"].as_i64().unwrap();
    let (status, _) = api(
        a.local_addr,
        "POST",
        "/api/piles",
        Some(json!({"id": "FENCED-1"})),
    )
    .await;
    assert_eq!(status, 201);
    let path = format!("/api/sites/{id}/piles/FENCED-1");
    assert_eq!(api(a.local_addr, "PUT", &path, None).await.0, 200);
    let lease = lease_name(id);
    let repo = a.central.repo().clone();
    common::wait::until(Duration::from_secs(15), "the site's lease", || async {
        let holder = repo.lease_holder(&lease, At::Database).await.unwrap();
        (holder.as_deref() == Some("a")).then_some(())
    })
    .await;
    let mut pile = Pile::connect(a.local_addr, "FENCED-1").await;
    pile.until_profile("TxDefaultProfile", 6.0).await;

    // Another holder takes the lease in the store: node a learns of it only at its next
    // renewal, up to 10 s away.
    repo.release_lease(&lease, "a").await.unwrap();
    let taken = repo
        .take_lease(&lease, "intruder", Duration::from_secs(600), At::Database)
        .await
        .unwrap();
    assert!(taken);
    let t = pile.start("CARD-1").await;
    let sent = pile.serve_for(3 * EVERY).await;
    assert_eq!(sent, Vec::<Value>::new(), "sent under a lease lost");
    let (_, log) = api(
        a.local_addr,
        "GET",
        &format!("/api/sites/{id}/allocations"),
        None,
    )
    .await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|d| d["transaction"] != t),
        "recorded under a lease lost: {log}"
    );

    // The lease free again: node a takes it and divides the running session.
    repo.release_lease(&lease, "intruder").await.unwrap();
    let p = pile.until_profile("TxProfile", 20.0).await;
    assert_eq!(p["csChargingProfiles"]["transactionId"], t);
    let (_, log) = api(
        a.local_addr,
        "GET",
        &format!("/api/sites/{id}/allocations"),
        None,
    )
    .await;
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|d| d["transaction"] == t && d["granted_a"] == 20.0),
        "{log}"
    );
}
