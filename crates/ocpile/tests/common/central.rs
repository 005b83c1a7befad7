//! The real `ocpile central` process for the tests, and its API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::timeout;

use super::{http_with, WAIT};

pub const TOKEN: &str = "test-token-0123456789";

/// A running `ocpile central`; killed (SIGKILL) when dropped.
pub struct CentralProcess {
    pub child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl CentralProcess {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn ocpp_url(&self) -> String {
        format!("ws://{}/ocpp/", self.addr)
    }

    /// An API request with the token; the status and the JSON body.
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Authorization: Bearer {TOKEN}\r\n");
        http_with(&self.addr, method, path, body, &auth).await
    }

    /// A POST of raw bytes (a firmware image) with the token; the status and the JSON body.
    pub async fn post_bytes(&self, path: &str, body: &[u8]) -> (u16, Value) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: central\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        super::parse_response(&response)
    }

    /// An API request that must succeed; its body.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (code, body) = self.api(method, path, body).await;
        assert!((200..300).contains(&code), "{method} {path}: {code} {body}");
        body
    }

    /// Registers an idTag the central accepts.
    pub async fn accept_id_tag(&self, tag: &str) {
        self.ok(
            "POST",
            "/api/id-tags",
            Some(serde_json::json!({"id_tag": tag, "status": "Accepted"})),
        )
        .await;
    }

    /// Waits until `GET path` satisfies `done`.
    pub async fn until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        timeout(WAIT, async {
            loop {
                let (_, body) = self.api("GET", path, None).await;
                if done(&body) {
                    return body;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the central never showed {what}"))
    }
}

impl Drop for CentralProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a card session on connector 1 of a pile of ours (its control port): the card, then
/// an EV of 16 A; returns once the central lists the running transaction, and its id.
pub async fn start_card_session(central: &CentralProcess, control: &str, tag: &str) -> i64 {
    use serde_json::json;
    super::http(
        control,
        "POST",
        "/card",
        Some(json!({"idTag": tag, "connector": 1})),
    )
    .await;
    super::http(
        control,
        "POST",
        "/connectors/1/plug",
        Some(json!({"max_current": 16.0})),
    )
    .await;
    let running = central
        .until(
            "/api/transactions?active=true",
            "the running transaction",
            |t| {
                t.as_array()
                    .is_some_and(|a| a.iter().any(|t| t["id_tag"] == tag))
            },
        )
        .await;
    running
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id_tag"] == tag)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Waits until the central has stored at least `n` meter values of a transaction.
pub async fn until_meter_values(central: &CentralProcess, transaction: i64, n: usize) {
    central
        .until(
            &format!("/api/transactions/{transaction}/meter-values"),
            "the meter values",
            |m| m.as_array().is_some_and(|a| a.len() >= n),
        )
        .await;
}

/// The databases the central-system tests run on: SQLite in the data directory, and
/// PostgreSQL (`OCPILE_TEST_PG`, default the local server, database `test`) in a schema of
/// the test's own.
pub fn databases(test: &str) -> Vec<Option<String>> {
    let pg = std::env::var("OCPILE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("ocpile_{test}_{}_{nanos}", std::process::id());
    let pg = Some(format!("{pg}?schema={schema}"));
    if super::cluster::of_one() {
        // SQLite cannot be a cluster's database: PostgreSQL once.
        return vec![pg];
    }
    vec![None, pg]
}

/// Starts `ocpile central` on a port of its own choosing (port 0) and reads the address it
/// prints.
pub fn start_central(data: &Path, db: Option<&str>, extra: &[&str]) -> CentralProcess {
    start_central_at(data, db, "127.0.0.1:0", extra)
}

pub fn start_central_at(
    data: &Path,
    db: Option<&str>,
    listen: &str,
    extra: &[&str],
) -> CentralProcess {
    // OCPILE_TEST_CLUSTER=1: every central is a cluster of one node (PostgreSQL and NATS).
    let one = super::cluster::of_one() && !extra.contains(&"--cluster");
    let of_one = one.then(|| super::cluster::one_node_db(data, db));
    let db = of_one.as_deref().or(db);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocpile"));
    cmd.arg("central");
    if one {
        cmd.args(["--cluster", &super::cluster::nats_url()]);
        if !extra.contains(&"--node") {
            cmd.args(["--node", "one"]);
        }
    }
    cmd.args(["--listen", listen, "--api-token", TOKEN, "--data"])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(db) = db {
        cmd.args(["--db", db]);
    }
    let mut child = cmd.spawn().expect("ocpile central starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("ocpile central listening on ") {
                let _ = tx.send(addr.trim().to_owned());
            } else if std::env::var_os("OCPILE_TEST_VERBOSE").is_some() {
                eprintln!("central: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(WAIT)
        .expect("the central prints its address");
    CentralProcess { child, addr }
}

/// A websocket handshake by hand: the HTTP status the central answers with.
pub async fn handshake_status(addr: &str, path: &str, headers: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{headers}\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = timeout(WAIT, s.read(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text[9..12].parse().unwrap()
}
