//! Two nodes of `ocpile central` (real processes, one PostgreSQL schema, one NATS server)
//! receive the same StartTransaction from two connections of one pile, one to each node: at
//! the same moment, or the second as a replay once the first node answered (the pile lost the
//! answer and reconnected to the other). The database holds one transaction, and every answer
//! that arrives carries its transactionId.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use transport::client::{connect, ClientConfig};
use transport::{Message, WsStream};

const CARD: &str = "REPLAY-CARD";
const ROUNDS: usize = 60;

/// A connection of the racing pile: open before the race, or opened when it starts.
enum Side {
    Open(Box<WsStream>),
    Opening(String),
}

/// Sends `frame` once `ready` lets every side go (a side still to connect connects first);
/// the transactionId of the answer to `message_id`, or none when the connection closed first
/// (the node told to let go of it).
async fn race(side: Side, frame: String, message_id: String, ready: Arc<Barrier>) -> Option<i64> {
    ready.wait().await;
    let mut ws = match side {
        Side::Open(ws) => *ws,
        Side::Opening(url) => connect(&ClientConfig::new(url.clone()))
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}")),
    };
    ws.send(Message::text(frame)).await.ok()?;
    let deadline = tokio::time::sleep(Duration::from_secs(15));
    tokio::pin!(deadline);
    loop {
        let message = tokio::select! {
            m = ws.next() => m,
            _ = &mut deadline => panic!("{message_id}: neither an answer nor a close in 15 s"),
        };
        let Some(Ok(message)) = message else {
            return None;
        };
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str()).unwrap();
        // The node's own CALLs (it reads the configuration) are not what we wait for.
        if frame[0] == 3 && frame[1] == message_id.as_str() {
            let id = frame[2]["transactionId"].as_i64();
            assert!(id.is_some(), "{frame}");
            return id;
        }
        assert!(
            !(frame[0] == 4 && frame[1] == message_id.as_str()),
            "a CALLERROR for the StartTransaction: {frame}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_start_transaction_at_two_nodes_at_once_is_one_transaction() {
    let began = Instant::now();
    let cluster = Cluster::on_own_ports("replay", 2, &["--admission", "open"]);
    cluster.node(0).accept_id_tag(CARD).await;
    let urls: Vec<String> = (0..2)
        .map(|i| format!("ws://{}/ocpp/", cluster.node(i).addr))
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut answers = 0;
    // Rounds at once in which both nodes answered.
    let mut both = 0;
    for round in 0..ROUNDS {
        let pile = format!("REPLAY-{round}");
        // One connection of the pile to each node. Kind 0: both open before anything is sent
        // (the second a reconnect, which the cluster answers by closing the first); kind 1:
        // the second opens as the first sends, so that the first node is still at its write
        // when the second receives the replay; kind 2: the first answers, then the pile sends
        // it again to the other node (its answer lost, it reconnected there).
        let kind = round % 3;
        let order: Vec<usize> = if round % 2 == 0 {
            vec![0, 1]
        } else {
            vec![1, 0]
        };
        let mut sides = Vec::new();
        for (k, i) in order.into_iter().enumerate() {
            let url = format!("{}{pile}", urls[i]);
            if k == 1 && kind != 0 {
                sides.push(Side::Opening(url));
                continue;
            }
            let ws = connect(&ClientConfig::new(url))
                .await
                .unwrap_or_else(|e| panic!("{pile} connects to node {i}: {e}"));
            sides.push(Side::Open(Box::new(ws)));
        }
        let message_id = format!("start-{round}");
        let timestamp = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let frame = json!([2, message_id, "StartTransaction", {
            "connectorId": 1,
            "idTag": CARD,
            "meterStart": 1000 * round,
            "timestamp": timestamp,
        }])
        .to_string();
        let mut given = Vec::new();
        if kind == 2 {
            for side in sides {
                let id = race(
                    side,
                    frame.clone(),
                    message_id.clone(),
                    Arc::new(Barrier::new(1)),
                );
                given.push(
                    id.await
                        .unwrap_or_else(|| panic!("{pile}: a node did not answer")),
                );
            }
        } else {
            let ready = Arc::new(Barrier::new(sides.len()));
            let tasks: Vec<_> = sides
                .into_iter()
                .map(|side| {
                    tokio::spawn(race(side, frame.clone(), message_id.clone(), ready.clone()))
                })
                .collect();
            for task in tasks {
                if let Some(id) = task.await.unwrap() {
                    given.push(id);
                }
            }
            both += usize::from(given.len() == 2);
        }
        assert!(!given.is_empty(), "{pile}: no node answered");
        assert!(
            given.iter().all(|id| *id == given[0]),
            "{pile}: two transactionIds for one StartTransaction: {given:?}"
        );
        answers += given.len();

        // One row, the one answered.
        let rows = cluster
            .schema()
            .number(&format!(
                "SELECT COUNT(*) FROM transactions WHERE pile = '{pile}'"
            ))
            .await;
        assert_eq!(
            rows, 1,
            "{pile}: {rows} transactions for one StartTransaction"
        );
        for i in 0..2 {
            let listed = cluster
                .node(i)
                .ok("GET", &format!("/api/transactions?pile={pile}"), None)
                .await;
            let listed = listed.as_array().unwrap();
            assert_eq!(listed.len(), 1, "node {i}: {listed:?}");
            assert_eq!(listed[0]["id"], given[0], "node {i}: {listed:?}");
            assert_eq!(listed[0]["meter_start"], 1000 * round as i64);
        }
        assert!(ids.insert(given[0]), "{pile}: an id given before: {ids:?}");
    }
    let total = cluster
        .schema()
        .number("SELECT COUNT(*) FROM transactions")
        .await;
    assert_eq!(total, ROUNDS as i64);
    eprintln!(
        "{ROUNDS} rounds, {answers} answers ({both} of the rounds at once answered by both \
         nodes), one transaction each, in {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
