//! A central system for the process tests that answers everything the pile sends, records
//! each CALL with its message id, and can send CALLs of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::timeout;
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};
use transport::{Message, WsStream};

use super::{http, WAIT};

/// One CALL the pile sent.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub action: String,
    pub payload: Value,
}

/// A central system that answers everything and records every CALL, with its message id.
#[derive(Clone, Default)]
pub struct Wire {
    pub calls: Arc<Mutex<Vec<Call>>>,
    /// The transactionId given to each StartTransaction, by message id (a repeat gets the same).
    pub transactions: Arc<Mutex<HashMap<String, i64>>>,
    /// Frames to send to the pile on the current connection.
    outgoing: Arc<Mutex<Option<mpsc::UnboundedSender<String>>>>,
    /// The answers the pile gave to our CALLs, by message id.
    pub answers: Arc<Mutex<HashMap<String, Value>>>,
}

impl Wire {
    fn answer(&self, id: &str, action: &str, payload: &Value) -> Value {
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        match action {
            "BootNotification" => {
                json!({"status": "Accepted", "currentTime": now, "interval": 900})
            }
            "Heartbeat" => json!({"currentTime": now}),
            "Authorize" => json!({"idTagInfo": {"status": "Accepted"}}),
            "StartTransaction" => {
                let mut txs = self.transactions.lock().unwrap();
                let next = txs.len() as i64 + 1;
                let tx = *txs.entry(id.to_owned()).or_insert(next);
                json!({"transactionId": tx, "idTagInfo": {"status": "Accepted"}})
            }
            _ => {
                let _ = payload;
                json!({})
            }
        }
    }

    async fn serve(self, mut ws: WsStream) {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        *self.outgoing.lock().unwrap() = Some(tx);
        loop {
            let message = tokio::select! {
                m = ws.next() => m,
                Some(frame) = rx.recv() => {
                    if ws.send(Message::text(frame)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let Some(Ok(message)) = message else {
                return;
            };
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            if frame[0] == 3 {
                self.answers.lock().unwrap().insert(
                    frame[1].as_str().unwrap_or_default().to_owned(),
                    frame[2].clone(),
                );
                continue;
            }
            if frame[0] != 2 {
                continue;
            }
            let (id, action) = (frame[1].as_str().unwrap(), frame[2].as_str().unwrap());
            self.calls.lock().unwrap().push(Call {
                id: id.to_owned(),
                action: action.to_owned(),
                payload: frame[3].clone(),
            });
            let reply = json!([3, id, self.answer(id, action, &frame[3])]);
            if ws.send(Message::text(reply.to_string())).await.is_err() {
                return;
            }
        }
    }

    /// Waits until a connection is being served (`accept` hands it over to a task).
    pub async fn connected(&self) {
        timeout(WAIT, async {
            while self.outgoing.lock().unwrap().is_none() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("a connection served");
    }

    /// Sends a CALL to the pile on the current connection; returns its answer's payload.
    pub async fn call(&self, id: &str, action: &str, payload: Value) -> Value {
        let frame = json!([2, id, action, payload]).to_string();
        self.outgoing
            .lock()
            .unwrap()
            .as_ref()
            .expect("a pile is connected")
            .send(frame)
            .unwrap();
        timeout(WAIT, async {
            loop {
                if let Some(answer) = self.answers.lock().unwrap().get(id) {
                    return answer.clone();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("an answer to {action}"))
    }

    pub fn calls(&self, action: &str) -> Vec<Call> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.action == action)
            .cloned()
            .collect()
    }

    /// The next CALL of `action` after the `seen` ones already taken; counts it as taken.
    pub async fn next_call(&self, action: &str, seen: &mut usize) -> Call {
        let calls = self.wait_for(action, *seen + 1).await;
        *seen += 1;
        calls[*seen - 1].clone()
    }

    /// Sends a CALL under a message id of its own; the answer's payload.
    pub async fn ask(&self, action: &str, payload: Value) -> Value {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = format!(
            "t-{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.call(&id, action, payload).await
    }

    /// Waits until at least `n` CALLs of `action` arrived; returns them.
    pub async fn wait_for(&self, action: &str, n: usize) -> Vec<Call> {
        timeout(WAIT, async {
            loop {
                let calls = self.calls(action);
                if calls.len() >= n {
                    return calls;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} × {action}"))
    }
}

/// Waits for the pile's next connection and serves it; the identity it connected with.
pub async fn accept(server: &mut WsServer, wire: &Wire) -> String {
    let accepted = timeout(WAIT, server.accept())
        .await
        .expect("the pile connects")
        .unwrap();
    wire.outgoing.lock().unwrap().take();
    tokio::spawn(wire.clone().serve(accepted.ws));
    wire.connected().await;
    accepted.identity
}

pub async fn server() -> (WsServer, String) {
    let server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(AllowAll)))
        .await
        .unwrap();
    let url = format!("ws://{}/ocpp/", server.local_addr());
    (server, url)
}

/// Waits until the control port's state satisfies `done`.
pub async fn state_until(control: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    timeout(WAIT, async {
        loop {
            let (_, state) = http(control, "GET", "/state", None).await;
            if done(&state) {
                return state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the pile never showed {what}"))
}

pub async fn set(control: &str, key: &str, value: &str) {
    let (code, body) = http(
        control,
        "POST",
        "/config",
        Some(json!({"key": key, "value": value})),
    )
    .await;
    assert_eq!((code, body), (200, json!({"status": "Accepted"})), "{key}");
}
