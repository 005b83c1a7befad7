//! A cluster of `ocpile central` nodes for the process tests: a PostgreSQL schema of the
//! test's own (dropped at the end), the NATS server of `OCPILE_TEST_NATS`, and nodes that share
//! one port (SO_REUSEPORT) or listen on ports of their own; the API of one given node.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::central::{start_central_at, CentralProcess, TOKEN};
use super::state_dir;

/// The NATS server of the tests (JetStream on).
pub fn nats_url() -> String {
    std::env::var("OCPILE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The PostgreSQL database of the tests (each works in a schema of its own).
pub fn pg_url() -> String {
    std::env::var("OCPILE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether the tests run every central as a cluster of one node (`OCPILE_TEST_CLUSTER=1`):
/// on PostgreSQL, with the NATS server, instead of alone on SQLite.
pub fn of_one() -> bool {
    std::env::var("OCPILE_TEST_CLUSTER").is_ok_and(|v| v == "1")
}

/// The database of a cluster of one: a PostgreSQL `db` as it is; for SQLite or none, a schema
/// named after the data directory (the same one at every restart of that central), of this
/// process (`ocpile_one_HASH_PID_0`: scripts/test.sh drops it).
pub fn one_node_db(data: &std::path::Path, db: Option<&str>) -> String {
    if let Some(db) = db.filter(|db| db.starts_with("postgres")) {
        return db.to_owned();
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    format!(
        "{}?schema=ocpile_one_{:016x}_{}_0",
        pg_url(),
        hasher.finish(),
        std::process::id()
    )
}

/// A PostgreSQL schema of one test, named `ocpile_TEST_PID_NANOS` (scripts/test.sh drops those
/// whose process is gone), dropped when this is.
pub struct Schema {
    name: String,
    /// Whether dropping this drops the schema.
    owned: bool,
}

impl Schema {
    pub fn new(test: &str) -> Schema {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let test: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Schema {
            name: format!("ocpile_{test}_{}_{nanos}", std::process::id()),
            owned: true,
        }
    }

    /// The schema `name` of another [`Schema`], to read it from another task; never dropped
    /// by this one.
    pub fn named(name: &str) -> Schema {
        Schema {
            name: name.to_owned(),
            owned: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `--db` URL of the nodes.
    pub fn db_url(&self) -> String {
        format!("{}?schema={}", pg_url(), self.name)
    }

    /// A connection to the database that reads this schema's tables.
    pub async fn connect(&self) -> sqlx::PgConnection {
        let mut conn = sqlx::PgConnection::connect(&pg_url())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} does not answer: {e}", pg_url()));
        sqlx::query(&format!("SET search_path TO \"{}\"", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    }

    /// One number read from the schema's tables (`SELECT COUNT(*) FROM ...`).
    pub async fn number(&self, sql: &str) -> i64 {
        let mut conn = self.connect().await;
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Dropped from async tests too: a runtime of its own on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_url()).await {
                    let _ = sqlx::query(&sql).execute(&mut conn).await;
                }
            })
        })
        .join();
    }
}

/// A port nothing listens on now, for nodes that share it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One node: its name and, while it runs, its process.
pub struct Node {
    pub name: String,
    listen: String,
    data: PathBuf,
    process: Option<CentralProcess>,
}

/// Nodes of one cluster: one schema, one NATS server. The processes are killed (SIGKILL) and
/// then the schema dropped when this is dropped.
pub struct Cluster {
    nodes: Vec<Node>,
    /// Options every node starts with (after the cluster's own).
    extra: Vec<String>,
    /// Whether the nodes share one port.
    shared: bool,
    schema: Schema,
}

impl Cluster {
    /// `n` nodes named `{test}-{i}` on one port with `--reuse-port`, each started with
    /// `--node-ttl 3 --drain-seconds 1` and `extra`.
    pub fn on_one_port(test: &str, n: usize, extra: &[&str]) -> Cluster {
        let listen = format!("127.0.0.1:{}", free_port());
        Cluster::start(test, (0..n).map(|_| listen.clone()).collect(), true, extra)
    }

    /// `n` nodes on ports of their own.
    pub fn on_own_ports(test: &str, n: usize, extra: &[&str]) -> Cluster {
        Cluster::start(
            test,
            (0..n).map(|_| "127.0.0.1:0".to_owned()).collect(),
            false,
            extra,
        )
    }

    fn start(test: &str, listens: Vec<String>, shared: bool, extra: &[&str]) -> Cluster {
        let schema = Schema::new(test);
        let nodes = listens
            .into_iter()
            .enumerate()
            .map(|(i, listen)| Node {
                name: format!("{}-{i}", test.replace('_', "-")),
                listen,
                data: state_dir(&format!("{test}-node{i}")),
                process: None,
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            shared,
            schema,
        };
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i);
        }
        cluster
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// Starts node `i` (again: on the address it had, with its data directory).
    pub fn start_node(&mut self, i: usize) {
        let db = self.schema.db_url();
        let nats = nats_url();
        let node = &mut self.nodes[i];
        assert!(node.process.is_none(), "{} runs already", node.name);
        let mut args = vec![
            "--cluster",
            nats.as_str(),
            "--node",
            node.name.as_str(),
            "--node-ttl",
            "3",
            "--drain-seconds",
            "1",
        ];
        if self.shared {
            args.push("--reuse-port");
        }
        args.extend(self.extra.iter().map(String::as_str));
        let process = start_central_at(&node.data, Some(&db), &node.listen, &args);
        if !self.shared {
            // A restart listens where it did.
            node.listen = process.addr.clone();
        }
        node.process = Some(process);
    }

    /// The process of node `i` (which must run).
    pub fn node(&self, i: usize) -> &CentralProcess {
        self.nodes[i]
            .process
            .as_ref()
            .unwrap_or_else(|| panic!("{} does not run", self.nodes[i].name))
    }

    pub fn runs(&self, i: usize) -> bool {
        self.nodes[i].process.is_some()
    }

    /// A running node (the first).
    pub fn any(&self) -> &CentralProcess {
        self.nodes
            .iter()
            .find_map(|n| n.process.as_ref())
            .expect("a node runs")
    }

    /// The OCPP URL the piles connect to (without the identity): the shared port, or node 0's.
    pub fn ocpp_url(&self) -> String {
        format!("ws://{}/ocpp/", self.nodes[0].listen)
    }

    /// SIGKILL of node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            p.kill();
        }
    }

    /// SIGTERM of node `i`; waits (at most `within`) until it exits, and says how long it took
    /// and whether it exited by itself with success.
    pub fn terminate(&mut self, i: usize, within: Duration) -> (Duration, bool) {
        let mut p = self.nodes[i].process.take().expect("the node runs");
        let began = Instant::now();
        // SAFETY: a signal to a child of ours that has not been waited for.
        unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
        loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                return (began.elapsed(), status.success());
            }
            if began.elapsed() > within {
                p.kill();
                return (began.elapsed(), false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// An API request answered by node `i` itself: on its own port directly; on the shared
    /// port, on a connection kept alive once `GET /api/nodes` on it says `this` is node `i`.
    pub async fn api_on(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let node = self.node(i);
        if !self.shared {
            return node.api(method, path, body).await;
        }
        let name = &self.nodes[i].name;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let mut http = KeptAlive::open(&node.addr).await;
            let (code, nodes) = http.request("GET", "/api/nodes", None).await;
            let this = nodes.as_array().and_then(|nodes| {
                nodes
                    .iter()
                    .find(|n| n["this"] == true)
                    .and_then(|n| n["name"].as_str())
            });
            if code == 200 && this == Some(name.as_str()) {
                return http.request(method, path, body).await;
            }
        }
        panic!("no connection to the shared port reached {name}");
    }

    /// The same, which must succeed; its body.
    pub async fn ok_on(&self, i: usize, method: &str, path: &str, body: Option<Value>) -> Value {
        let (code, body) = self.api_on(i, method, path, body).await;
        assert!(
            (200..300).contains(&code),
            "{method} {path} on {}: {code} {body}",
            self.name(i)
        );
        body
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// An HTTP/1.1 connection for several requests in turn (each body read by its length).
pub struct KeptAlive {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl KeptAlive {
    pub async fn open(addr: &str) -> KeptAlive {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .expect("the node answers")
            .expect("the node accepts");
        KeptAlive {
            stream,
            buf: Vec::new(),
        }
    }

    /// One request with the API token; the status and the JSON body (null if none).
    pub async fn request(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: central\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).await.unwrap();
        self.stream.write_all(body.as_bytes()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(40), self.response())
            .await
            .unwrap_or_else(|_| panic!("no answer to {method} {path}"))
    }

    async fn response(&mut self) -> (u16, Value) {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        let status: u16 = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("an answer without Content-Length: {head}"));
        while self.buf.len() < end + length {
            self.fill().await;
        }
        let body: Vec<u8> = self.buf.drain(..end + length).skip(end).collect();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the node closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

/// Polls `probe` until it gives a value, for at most `within`; panics with `what` after.
pub async fn poll<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "within {within:?}: never {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A pile that node `node` holds now, as the database has it.
pub async fn held_by(cluster: &Cluster, node: &str) -> String {
    let mut conn = cluster.schema().connect().await;
    sqlx::query_scalar::<_, String>(
        "SELECT id FROM piles WHERE node = $1 AND connection IS NOT NULL ORDER BY id LIMIT 1",
    )
    .bind(node)
    .fetch_one(&mut conn)
    .await
    .unwrap_or_else(|e| panic!("no pile on {node}: {e}"))
}

/// Waits until `piles` transactions run (each pile's card session started).
pub async fn until_sessions_running(schema: &Schema, piles: usize) {
    poll(Duration::from_secs(60), "every session running", || async {
        let n = schema
            .number("SELECT COUNT(*) FROM transactions WHERE stop_time IS NULL")
            .await;
        (n == piles as i64).then_some(())
    })
    .await;
}

/// The meter values stored of each running transaction.
async fn metered(schema: &Schema) -> std::collections::HashMap<i64, i64> {
    let mut conn = schema.connect().await;
    sqlx::query_as::<_, (i64, i64)>(
        "SELECT t.id, COUNT(m.transaction_id) FROM transactions t \
         LEFT JOIN meter_values m ON m.transaction_id = t.id \
         WHERE t.stop_time IS NULL GROUP BY t.id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Waits until each of the `piles` running sessions has a meter value stored past those it has
/// now: the sessions go on (at most a minute).
pub async fn until_metered_again(schema: &Schema, piles: usize) {
    let before = metered(schema).await;
    poll(
        Duration::from_secs(60),
        "a new meter value of every session",
        || async {
            let now = metered(schema).await;
            let on = now
                .iter()
                .filter(|(id, n)| **n > before.get(*id).copied().unwrap_or(0))
                .count();
            (on == piles).then_some(())
        },
    )
    .await;
}

/// Waits until the fleet at `control` has its `piles` accepted and every one of them present
/// in the database, with a pile on each node of `names` (`via`: who spread them); the piles by
/// node.
pub async fn until_spread(
    cluster: &Cluster,
    control: &str,
    piles: usize,
    names: &[String],
    via: &str,
) -> std::collections::BTreeMap<String, i64> {
    super::fleet::fleet_until(
        control,
        Duration::from_secs(60),
        "every pile accepted",
        |s| s["accepted"] == piles,
    )
    .await;
    let spread = poll(Duration::from_secs(30), "every pile present", || async {
        let p = presence(cluster.schema()).await;
        (p.values().sum::<i64>() == piles as i64).then_some(p)
    })
    .await;
    for name in names {
        assert!(
            spread.get(name).is_some_and(|n| *n > 0),
            "{via} gave {name} no pile: {spread:?}"
        );
    }
    eprintln!("piles by node: {spread:?}");
    spread
}

/// Connected piles by node, as the database has them.
pub async fn presence(schema: &Schema) -> std::collections::BTreeMap<String, i64> {
    let mut conn = schema.connect().await;
    sqlx::query_as::<_, (String, i64)>(
        "SELECT COALESCE(node, ''), COUNT(*) FROM piles WHERE connection IS NOT NULL GROUP BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// After a fleet of `ids` (the fleet's control API at `control`) ran one card session each
/// and answered all it sent: one transaction per pile, started and stopped, none reconciled
/// (a lost StartTransaction becomes one), stopped between its start and its pile's register
/// now; every MeterValues the fleet counts answered stored once. Returns the
/// MeterValues answered and stored.
pub async fn assert_nothing_lost(schema: &Schema, control: &str, ids: &[String]) -> (i64, i64) {
    let (_, summary) = super::http(control, "GET", "/fleet", None).await;
    let mut conn = schema.connect().await;
    let rows = sqlx::query_as::<_, (String, i64, Option<i64>, Option<i64>, i64)>(
        "SELECT pile, id, meter_start, meter_stop, reconciled FROM transactions ORDER BY pile",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), ids.len(), "no transaction lost or doubled");
    for ((pile, tx, start, stop, reconciled), id) in rows.iter().zip(ids) {
        assert_eq!(pile, id, "one transaction per pile");
        assert_eq!(*reconciled, 0, "{pile}: its StartTransaction was lost");
        let stop = stop.unwrap_or_else(|| panic!("{pile}: its StopTransaction was lost"));
        // The register read now may be a little past the stop: the meter still ran from the
        // stop's reading until the relay opened.
        let (_, state) = super::http(control, "GET", &format!("/piles/{pile}/state"), None).await;
        let register = state["connectors"][0]["energy_wh"].as_i64().unwrap();
        assert!(
            start.is_some_and(|start| start <= stop) && stop <= register,
            "{pile}: transaction {tx} from {start:?} to {stop}, the register at {register}"
        );
    }
    let stored = schema.number("SELECT COUNT(*) FROM meter_values").await;
    let answered = summary["meter_values_answered"].as_i64().unwrap();
    // Each MeterValues of the fleet carries one reading, and a pile sends it again until it
    // is answered: a row fewer is one lost, a row more one counted twice.
    assert_eq!(
        stored, answered,
        "{answered} MeterValues answered, {stored} rows in the database"
    );
    // A meter value is its transaction, its time and what was sampled: none twice (two
    // readings of one instant, a periodic one and the stop's, differ in their context).
    let twice = sqlx::query_as::<_, (Option<i64>, i64, Vec<u8>, i64)>(
        "SELECT transaction_id, time, sampled, COUNT(*) FROM meter_values \
         GROUP BY 1, 2, 3 HAVING COUNT(*) > 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(twice.is_empty(), "meter values stored twice: {twice:?}");
    let same_time = sqlx::query_as::<_, (Option<i64>, i64, Vec<u8>)>(
        "SELECT transaction_id, time, sampled FROM meter_values m WHERE (SELECT COUNT(*) \
         FROM meter_values n WHERE n.transaction_id = m.transaction_id AND n.time = m.time) > 1 \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    if !same_time.is_empty() {
        eprintln!(
            "meter values of one transaction and one time, sampled differently: {same_time:#?}"
        );
    }
    (answered, stored)
}
