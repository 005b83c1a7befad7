//! Our pile (the real binary) against `ocpile central` (the real binary), on SQLite and on
//! PostgreSQL: admission, a card session and a remote start/stop seen through the API,
//! commands through the API, refused handshakes listed.

mod common;

use common::central::{
    databases, handshake_status, start_card_session, start_central, until_meter_values,
    CentralProcess,
};
use common::wire::{set, state_until};
use common::{http, start_pile_with_control, state_dir};
use serde_json::{json, Value};

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let raw = format!("{user}:{password}");
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

async fn card(control: &str, tag: &str) {
    let (code, _) = http(
        control,
        "POST",
        "/card",
        Some(json!({"idTag": tag, "connector": 1})),
    )
    .await;
    assert_eq!(code, 200);
}

async fn transactions(central: &CentralProcess, pile: &str) -> Vec<Value> {
    central
        .ok("GET", &format!("/api/transactions?pile={pile}"), None)
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn session_and_commands(db: Option<String>, name: &str) {
    let data = state_dir(&format!("central-{name}"));
    let central = start_central(&data, db.as_deref(), &["--admission", "registered"]);
    let pile_id = "CS-PILE";
    let created = central
        .ok(
            "POST",
            "/api/piles",
            Some(json!({"id": pile_id, "password": "correct-horse-1"})),
        )
        .await;
    assert_eq!(created["registration"], "Accepted");
    assert_eq!(created["has_password"], true);
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());
    central.accept_id_tag("CARD1").await;

    // Refused handshakes: a wrong password, none, no subprotocol, an unknown pile, no identity.
    let addr = central.addr.clone();
    let proto = "Sec-WebSocket-Protocol: ocpp1.6\r\n";
    let wrong = format!("{proto}{}", basic(pile_id, "wrong-password"));
    assert_eq!(handshake_status(&addr, "/ocpp/CS-PILE", &wrong).await, 401);
    assert_eq!(handshake_status(&addr, "/ocpp/CS-PILE", proto).await, 401);
    let right_no_proto = basic(pile_id, "correct-horse-1");
    assert_eq!(
        handshake_status(&addr, "/ocpp/CS-PILE", &right_no_proto).await,
        400
    );
    assert_eq!(handshake_status(&addr, "/ocpp/STRANGER", proto).await, 403);
    assert_eq!(handshake_status(&addr, "/ocpp/", proto).await, 404);
    let refused = central.ok("GET", "/api/handshakes/refused", None).await;
    let reasons: Vec<(i64, String)> = refused
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["http_status"].as_i64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 5, "{refused}");
    assert_eq!(reasons[4], (401, "wrong password".into()), "oldest last");
    assert!(reasons[2].1.contains("subprotocol"), "{reasons:?}");
    assert!(reasons[1].1.contains("not registered"), "{reasons:?}");
    assert_eq!(refused[0]["identity"], Value::Null);
    assert!(refused[4]["remote"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));

    // Our pile connects with its password; the central reads its configuration, vendor keys
    // by name.
    let state = state_dir(&format!("central-{name}-pile"));
    let (_pile, control) = start_pile_with_control(
        pile_id,
        &central.ocpp_url(),
        &state,
        &["--password", "correct-horse-1"],
    );
    let vendor = central
        .until(
            &format!("/api/piles/{pile_id}/vendor"),
            "the vendor keys",
            |v| v["websocket"].is_object(),
        )
        .await;
    assert_eq!(vendor["name"], pile_id);
    assert_eq!(vendor["websocket"]["path"], "/ocpp/");
    assert_eq!(vendor["fault_mask"]["value"], 0);
    assert_eq!(vendor["net_state"]["connectivity"], "ETH");
    let shown = central
        .ok("GET", &format!("/api/piles/{pile_id}"), None)
        .await;
    assert_eq!(shown["connected"], true);
    assert_eq!(shown["model"], "M3G3");
    assert_eq!(shown["connectors"][0]["status"], "Available");
    assert!(shown["cellular"]["note"]
        .as_str()
        .unwrap()
        .contains("4G alone"));

    set(&control, "VendorDirectWorkMode", "false").await;
    set(&control, "MeterValueSampleInterval", "1").await;

    // A card session, until the central has stored two samples of it.
    let running = start_card_session(&central, &control, "CARD1").await;
    state_until(&control, "Charging", |s| {
        s["connectors"][0]["status"] == "Charging"
    })
    .await;
    until_meter_values(&central, running, 2).await;
    card(&control, "CARD1").await;
    state_until(&control, "the stop sent", |s| {
        s["outbox"] == 0 && s["connectors"][0]["transaction"].is_null()
    })
    .await;
    let txs = transactions(&central, pile_id).await;
    assert_eq!(txs.len(), 1, "{txs:?}");
    let t = &txs[0];
    assert_eq!(
        (t["connector"].as_i64(), t["id_tag"].as_str()),
        (Some(1), Some("CARD1"))
    );
    assert_eq!(t["reason"], "Local");
    assert_eq!(t["reconciled"], false);
    let energy = t["energy_wh"].as_i64().unwrap();
    assert!(energy > 0, "{t}");
    assert_eq!(
        energy,
        t["meter_stop"].as_i64().unwrap() - t["meter_start"].as_i64().unwrap()
    );
    let id = t["id"].as_i64().unwrap();
    let mv = central
        .ok("GET", &format!("/api/transactions/{id}/meter-values"), None)
        .await;
    assert!(mv.as_array().unwrap().len() >= 2, "{mv}");

    // A remote start and stop through the command API.
    http(&control, "POST", "/connectors/1/unplug", None).await;
    state_until(&control, "Available", |s| {
        s["connectors"][0]["status"] == "Available"
    })
    .await;
    let (code, answer) = central
        .api(
            "POST",
            &format!("/api/piles/{pile_id}/commands/RemoteStartTransaction"),
            Some(json!({"idTag": "CARD1", "connectorId": 1})),
        )
        .await;
    assert_eq!(
        (code, &answer),
        (200, &json!({"response": {"status": "Accepted"}}))
    );
    http(&control, "POST", "/connectors/1/plug", None).await;
    let active = central
        .until(
            "/api/transactions?active=true",
            "the remote transaction",
            |b| b.as_array().is_some_and(|a| a.len() == 1),
        )
        .await;
    let remote_id = active[0]["id"].as_i64().unwrap();
    assert_ne!(remote_id, id);
    let (code, answer) = central
        .api(
            "POST",
            &format!("/api/piles/{pile_id}/commands/RemoteStopTransaction"),
            Some(json!({"transactionId": remote_id})),
        )
        .await;
    assert_eq!(
        (code, &answer),
        (200, &json!({"response": {"status": "Accepted"}}))
    );
    let stopped = central
        .until(
            &format!("/api/transactions/{remote_id}"),
            "the remote stop",
            |t| t["reason"] == "Remote",
        )
        .await;
    assert!(stopped["energy_wh"].as_i64().unwrap() >= 0);

    // Commands reach the pile and return its answers; bad ones are refused before sending.
    let (code, answer) = central
        .api(
            "POST",
            &format!("/api/piles/{pile_id}/commands/GetConfiguration"),
            Some(json!({"key": ["OEM_NetState"]})),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        answer["response"]["configurationKey"][0]["key"],
        "OEM_NetState"
    );
    let (code, answer) = central
        .api(
            "POST",
            &format!("/api/piles/{pile_id}/commands/UnlockConnector"),
            Some(json!({"connectorId": "one"})),
        )
        .await;
    assert_eq!(code, 400, "{answer}");
    let (code, _) = central
        .api(
            "POST",
            &format!("/api/piles/{pile_id}/commands/Heartbeat"),
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 400, "Heartbeat is sent by piles");
    let (code, _) = central
        .api(
            "POST",
            "/api/piles/NOBODY/commands/ClearCache",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 404);
    let stored = central
        .ok("GET", &format!("/api/piles/{pile_id}/commands"), None)
        .await;
    assert_eq!(stored[0]["action"], "GetConfiguration");
    assert_eq!(stored[0]["outcome"], "response");

    // The vendor view, changed through fields and read back.
    let (code, answer) = central
        .api(
            "PATCH",
            &format!("/api/piles/{pile_id}/vendor"),
            Some(json!({"heartbeat_interval": 120, "function_mask": ["buzzer_off"]})),
        )
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["results"],
        json!({"HeartbeatInterval": "Accepted", "OEM_FunctionMask": "Accepted"})
    );
    let vendor = central
        .ok("GET", &format!("/api/piles/{pile_id}/vendor"), None)
        .await;
    assert_eq!(vendor["heartbeat_interval"], 120);
    assert_eq!(vendor["function_mask"]["value"], 1);
    let (code, _) = central
        .api(
            "PATCH",
            &format!("/api/piles/{pile_id}/vendor"),
            Some(json!({"heartbeat_interval": 30})),
        )
        .await;
    assert_eq!(code, 400);

    // The raw message log: both ways, answers carrying the action of their CALL.
    // The log is committed within a second of its frames.
    let log = central
        .until(
            &format!("/api/piles/{pile_id}/messages?action=StartTransaction&limit=10"),
            "both StartTransactions logged with their answers",
            |l| l.as_array().is_some_and(|a| a.len() >= 4),
        )
        .await;
    let dirs: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(dirs, ["out", "in", "out", "in"], "{log}");
    assert!(log[0]["frame"].as_str().unwrap().starts_with("[3,"));

    // Without the token: 401.
    let (code, _) = http(&central.addr, "GET", "/api/piles", None).await;
    assert_eq!(code, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn our_pile_against_the_central_on_sqlite_and_postgres() {
    for (i, db) in databases("session").into_iter().enumerate() {
        session_and_commands(db, &format!("session{i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_pile_waits_in_the_inbox_until_approved() {
    let data = state_dir("central-approve");
    let central = start_central(&data, None, &["--admission", "approve"]);
    let state = state_dir("central-approve-pile");
    let (_pile, _control) = start_pile_with_control("NEWCOMER", &central.ocpp_url(), &state, &[]);
    let pending = central
        .until("/api/piles/NEWCOMER", "the newcomer", |p| {
            p["registration"] == "Pending" && p["last_boot"].is_string()
        })
        .await;
    assert_eq!(pending["connected"], true);
    let approved = central
        .ok("POST", "/api/piles/NEWCOMER/approve", None)
        .await;
    assert_eq!(approved["registration"], "Accepted");
    assert_eq!(approved["boot_notification_triggered"], "Accepted");
    // Accepted at once: its configuration is read, which only follows an accepted boot.
    central
        .until(
            "/api/piles/NEWCOMER/configuration",
            "the configuration",
            |c| c["keys"].as_array().is_some_and(|k| !k.is_empty()),
        )
        .await;
    let boots = central
        .until(
            "/api/piles/NEWCOMER/messages?action=BootNotification",
            "both boots logged with their answers",
            |l| l.as_array().is_some_and(|a| a.len() >= 4),
        )
        .await;
    let statuses: Vec<String> = boots
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out")
        .map(|m| {
            serde_json::from_str::<Value>(m["frame"].as_str().unwrap()).unwrap()[2]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses, ["Accepted", "Pending"], "newest first");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pile_reaches_a_central_on_an_ipv6_address() {
    let data = state_dir("central-ipv6");
    let central =
        common::central::start_central_at(&data, None, "[::1]:0", &["--admission", "open"]);
    assert!(central.addr.starts_with("[::1]:"), "{}", central.addr);
    let state = state_dir("central-ipv6-pile");
    let (_pile, control) = start_pile_with_control("V6-PILE", &central.ocpp_url(), &state, &[]);
    let s = state_until(&control, "accepted", |s| {
        s["connection"]["accepted"] == true
    })
    .await;
    assert_eq!(
        s["connection"]["url"],
        format!("ws://{}/ocpp/V6-PILE", central.addr)
    );
    let pile = central
        .until("/api/piles/V6-PILE", "the pile", |p| p["connected"] == true)
        .await;
    assert_eq!(pile["registration"], "Accepted");
}
