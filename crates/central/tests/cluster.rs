//! Two nodes of one central system in this process, sharing a PostgreSQL schema and the NATS
//! server: a command through either node's API reaches the pile wherever it is connected, a
//! pile that connects again elsewhere is taken over, each node lists the nodes, and the
//! dashboards' changes cross nodes.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use common::pile::Ws;

mod common;

/// How long a node waits for a pile's answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// A node not heard from for this long is gone (its heartbeat comes every second).
const NODE_TTL: Duration = Duration::from_secs(3);

/// The node `node` of the cluster on `db`.
async fn node(db: &str, test: &str, node: &str) -> central::Running {
    let mut options =
        common::node::cluster_options(&format!("cluster-{test}-{node}"), node, db, NODE_TTL);
    options.command_timeout = COMMAND_TIMEOUT;
    common::node::start(options).await
}

/// Two nodes, `a` and `b`, of one new cluster.
async fn two_nodes(test: &str) -> (central::Running, central::Running) {
    let db = common::database_url("cluster", test);
    let a = node(&db, test, "a").await;
    let b = node(&db, test, "b").await;
    (a, b)
}

async fn connect(node: &central::Running, id: &str) -> Ws {
    common::pile::connect(node.local_addr, id).await
}

/// The next CALL the pile receives: its unique id, action and payload.
async fn next_call(ws: &mut Ws) -> (String, String, Value) {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a CALL in time")
            .expect("the connection lives")
            .unwrap();
        if let Message::Text(t) = m {
            let frame: Value = serde_json::from_str(t.as_str()).unwrap();
            if frame[0] == 2 {
                return (
                    frame[1].as_str().unwrap().to_owned(),
                    frame[2].as_str().unwrap().to_owned(),
                    frame[3].clone(),
                );
            }
        }
    }
}

/// Whether the server closes the pile's socket within `within`.
async fn closed_within(ws: &mut Ws, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return false,
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn api(
    node: &central::Running,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    common::node::api(node.local_addr, method, &format!("/api{path}"), body).await
}

/// `POST /api/piles/{pile}/commands/{action}` through `node`, in the background: its status
/// and answer once it comes.
fn command(
    node: &central::Running,
    pile: &str,
    action: &str,
    body: Option<Value>,
) -> tokio::task::JoinHandle<(u16, Value)> {
    let addr = node.local_addr;
    let path = format!("/api/piles/{pile}/commands/{action}");
    tokio::spawn(async move { common::node::api(addr, "POST", &path, body).await })
}

/// Polls `GET path` on `node` until `ok` holds of the answer (10 s at most); the answer.
async fn until(node: &central::Running, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
    common::wait::until(Duration::from_secs(10), &format!("GET {path}"), || async {
        let (status, body) = api(node, "GET", path, None).await;
        (status == 200 && ok(&body)).then_some(body)
    })
    .await
}

/// Waits until every node sees the pile connected to `holder`.
async fn held_by(nodes: [&central::Running; 2], pile: &str, holder: &str) {
    for node in nodes {
        until(node, &format!("/piles/{pile}"), |p| {
            p["connected"] == true && p["node"] == holder
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_through_the_other_node_reaches_the_pile_and_returns_its_answer() {
    let (a, b) = two_nodes("command").await;
    let mut pile = connect(&a, "CP-1").await;
    held_by([&a, &b], "CP-1", "a").await;

    let command = command(&b, "CP-1", "Reset", Some(json!({"type": "Soft"})));
    let (id, action, payload) = next_call(&mut pile).await;
    assert_eq!(
        (action.as_str(), &payload),
        ("Reset", &json!({"type": "Soft"}))
    );
    pile.send(Message::text(
        json!([3, id, {"status": "Rejected"}]).to_string(),
    ))
    .await
    .unwrap();
    let (status, body) = command.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"response": {"status": "Rejected"}}));

    // The command is stored with its result, as on one node.
    let commands = until(&a, "/piles/CP-1/commands", |c| {
        c.as_array().is_some_and(|c| !c.is_empty())
    })
    .await;
    assert_eq!(commands[0]["action"], "Reset", "{commands}");
    assert_eq!(commands[0]["outcome"], "response", "{commands}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pile_no_node_holds_is_409_at_once_and_one_that_does_not_answer_504() {
    let (a, b) = two_nodes("failures").await;
    let (status, _) = api(&a, "POST", "/piles", Some(json!({"id": "OFF"}))).await;
    assert_eq!(status, 201);
    let started = Instant::now();
    let (status, body) = api(
        &b,
        "POST",
        "/piles/OFF/commands/Reset",
        Some(json!({"type": "Hard"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "pile \"OFF\" is not connected");
    assert!(
        started.elapsed() < COMMAND_TIMEOUT / 2,
        "{:?}",
        started.elapsed()
    );

    // The pile on a reads the CALL and never answers: b answers 504 once a's timeout passed.
    let mut pile = connect(&a, "MUTE").await;
    held_by([&a, &b], "MUTE", "a").await;
    let started = Instant::now();
    let command = command(&b, "MUTE", "Reset", Some(json!({"type": "Hard"})));
    let (_, action, _) = next_call(&mut pile).await;
    assert_eq!(action, "Reset");
    let (status, body) = command.await.unwrap();
    let waited = started.elapsed();
    assert_eq!(status, 504, "{body}");
    assert!(
        waited >= COMMAND_TIMEOUT && waited < COMMAND_TIMEOUT * 3,
        "{waited:?}"
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pile_that_connects_to_another_node_is_taken_over_once() {
    let (a, b) = two_nodes("takeover").await;
    let mut old = connect(&a, "CP-2").await;
    held_by([&a, &b], "CP-2", "a").await;

    let mut new = connect(&b, "CP-2").await;
    assert!(
        closed_within(&mut old, Duration::from_secs(1)).await,
        "a closes the older connection"
    );
    held_by([&a, &b], "CP-2", "b").await;
    // a's end is written (its Disconnected, replaced) and never cleared b's presence.
    let events = until(&b, "/piles/CP-2/events", |e| {
        e.as_array().unwrap().iter().any(|e| {
            e["kind"] == "Disconnected" && e["detail"].as_str().unwrap().ends_with("(replaced)")
        })
    })
    .await;
    let replaced: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "ConnectionReplaced")
        .collect();
    assert_eq!(replaced.len(), 1, "{events}");
    assert!(
        replaced[0]["detail"]
            .as_str()
            .unwrap()
            .contains("on node a"),
        "{events}"
    );
    let pile = until(&a, "/piles/CP-2", |_| true).await;
    assert_eq!(
        (&pile["connected"], &pile["node"]),
        (&json!(true), &json!("b"))
    );

    // Commands now go to the newer connection, from either node.
    let command = command(&a, "CP-2", "ClearCache", None);
    let (id, action, _) = next_call(&mut new).await;
    assert_eq!(action, "ClearCache");
    new.send(Message::text(
        json!([3, id, {"status": "Accepted"}]).to_string(),
    ))
    .await
    .unwrap();
    let (status, body) = command.await.unwrap();
    assert_eq!(status, 200, "{body}");

    // A pile deleted through a's API is closed on b, and shows nowhere.
    let (status, _) = api(&a, "DELETE", "/piles/CP-2", None).await;
    assert_eq!(status, 204);
    assert!(
        closed_within(&mut new, Duration::from_secs(1)).await,
        "b closes the deleted pile's connection"
    );
    let nodes = until(&a, "/nodes", |n| n[1]["piles"] == 0).await;
    assert_eq!(nodes[1]["name"], "b", "{nodes}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_node_lists_the_nodes_with_their_piles() {
    let (a, b) = two_nodes("nodes").await;
    let _p1 = connect(&a, "N-1").await;
    let _p2 = connect(&a, "N-2").await;
    held_by([&a, &b], "N-1", "a").await;
    held_by([&a, &b], "N-2", "a").await;
    for (this, node) in [("a", &a), ("b", &b)] {
        let (status, nodes) = api(node, "GET", "/nodes", None).await;
        assert_eq!(status, 200, "{nodes}");
        let seen: Vec<(&str, i64, bool)> = nodes
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap(),
                    n["piles"].as_i64().unwrap(),
                    n["this"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [("a", 2, this == "a"), ("b", 0, this == "b")],
            "{nodes}"
        );
        let address = node.local_addr.to_string();
        let me = nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == this)
            .unwrap();
        assert_eq!(me["address"], address.as_str());
        for field in ["started_at", "heard_at"] {
            let t = me[field].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(t).is_ok(),
                "{field}: {t}"
            );
        }
    }
    // The fleet's overview counts the piles of every node.
    let (_, fleet) = api(&b, "GET", "/fleet", None).await;
    assert_eq!(fleet["online"], 2, "{fleet}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_taken_for_gone_while_it_lives_shows_its_piles_again() {
    let (a, b) = two_nodes("reaped").await;
    let _pile = connect(&a, "R-1").await;
    held_by([&a, &b], "R-1", "a").await;
    // Another node took a for gone (say the database was out of reach for a while).
    let later = chrono::Utc::now().timestamp_millis() + 60_000;
    let reaped = b
        .central
        .repo()
        .reap_nodes(Duration::ZERO, central::store::At::Time(later))
        .await
        .unwrap();
    assert_eq!(reaped, ["a", "b"]);
    let (_, pile) = api(&b, "GET", "/piles/R-1", None).await;
    assert_eq!(
        (&pile["connected"], &pile["node"]),
        (&json!(false), &Value::Null)
    );
    // At a's next heartbeat its row and its pile's presence are back.
    held_by([&a, &b], "R-1", "a").await;
    let nodes = until(&b, "/nodes", |n| n.as_array().unwrap().len() == 2).await;
    assert_eq!(nodes[0]["name"], "a", "{nodes}");
    assert_eq!(nodes[0]["piles"], 1, "{nodes}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pulse_counts_the_piles_online_on_every_node() {
    let (a, b) = two_nodes("pulse").await;
    let _on_a = connect(&a, "PU-1").await;
    let _on_b = connect(&b, "PU-2").await;
    held_by([&a, &b], "PU-1", "a").await;
    held_by([&a, &b], "PU-2", "b").await;
    let now = chrono::Utc::now().timestamp_millis();
    for node in [&a, &b] {
        let sample = node
            .central
            .pulse_sample(now)
            .await
            .expect("the store answers");
        assert_eq!(
            sample.online, 2,
            "the home page's chart counts both nodes' piles"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_on_one_node_reaches_the_other_nodes_live_pages() {
    let (a, b) = two_nodes("changes").await;
    let mut on_b = b.central.subscribe_changes();
    let mut on_a = a.central.subscribe_changes();
    a.central.changed("campaign 7".into());
    let seen = tokio::time::timeout(Duration::from_secs(5), on_b.recv())
        .await
        .expect("b hears of a's change")
        .unwrap();
    assert_eq!(seen, "campaign 7");
    // a shows its own change once (not again when it comes back over NATS).
    assert_eq!(on_a.recv().await.unwrap(), "campaign 7");
    b.central.changed("campaign 8".into());
    let next = tokio::time::timeout(Duration::from_secs(5), on_a.recv())
        .await
        .expect("a hears of b's change")
        .unwrap();
    assert_eq!(next, "campaign 8");
}

#[tokio::test(flavor = "multi_thread")]
async fn alone_a_node_lists_itself_and_routes_nothing_elsewhere() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cluster-alone-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = central::Options::new(&dir);
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.admission = central::Admission::Open;
    options.api_token = Some("T".into());
    options.node = "solo".into();
    let solo = central::server::start(options).await.unwrap();
    let (status, nodes) = api(&solo, "GET", "/nodes", None).await;
    assert_eq!(status, 200);
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    assert_eq!(
        (&nodes[0]["name"], &nodes[0]["this"]),
        (&json!("solo"), &json!(true))
    );

    let _pile = connect(&solo, "S-1").await;
    let pile = until(&solo, "/piles/S-1", |p| p["connected"] == true).await;
    assert_eq!(pile["node"], "solo");
    let (status, _) = api(&solo, "POST", "/piles", Some(json!({"id": "S-OFF"}))).await;
    assert_eq!(status, 201);
    let (status, body) = api(
        &solo,
        "POST",
        "/piles/S-OFF/commands/Reset",
        Some(json!({"type": "Hard"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (_, off) = api(&solo, "GET", "/piles/S-OFF", None).await;
    assert_eq!(
        (&off["connected"], &off["node"]),
        (&json!(false), &Value::Null)
    );
}
