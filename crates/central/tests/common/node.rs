//! A test node in this process: its options (a data directory of its own, a free port of
//! 127.0.0.1, any pile admitted, the API token [`TOKEN`]), alone or in a cluster on a
//! PostgreSQL schema and the test NATS server.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// The API token of every test node.
#[allow(dead_code)]
pub const TOKEN: &str = "T";

/// The options of the node `node`, its data directory `LABEL-PID` new in the target's
/// temporary folder.
#[allow(dead_code)]
pub fn options(label: &str, node: &str) -> central::Options {
    let mut options = central::Options::new(super::fresh_dir(label));
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.admission = central::Admission::Open;
    options.api_token = Some(TOKEN.into());
    options.node = node.into();
    options
}

/// The options of the node `node` of the cluster on the database `db` and the test NATS
/// server; a node not heard from for `node_ttl` is gone.
#[allow(dead_code)]
pub fn cluster_options(label: &str, node: &str, db: &str, node_ttl: Duration) -> central::Options {
    let mut options = options(label, node);
    options.db = Some(db.to_owned());
    options.cluster = Some(super::nats_url());
    options.node_ttl = node_ttl;
    options
}

/// Starts a node; a clear panic when it cannot (PostgreSQL or NATS down).
#[allow(dead_code)]
pub async fn start(options: central::Options) -> central::Running {
    let node = options.node.clone();
    central::server::start(options).await.unwrap_or_else(|e| {
        panic!(
            "node {node} does not start ({e}): are PostgreSQL at {} and NATS at {} up?",
            super::pg_url(),
            super::nats_url()
        )
    })
}

/// `METHOD path` on the node at `addr` with the API token, `body` in JSON: the status and the
/// answer (JSON, else its text as a string).
#[allow(dead_code)]
pub async fn api(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method.parse().unwrap(), format!("http://{addr}{path}"))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}
