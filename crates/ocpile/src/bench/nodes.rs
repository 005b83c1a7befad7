//! The central system on K nodes for the bench: K `ocpile central` processes on one port
//! (`--reuse-port`: the kernel hands each new connection to one of them), sharing a fresh
//! PostgreSQL schema (dropped afterwards) and NATS (`--cluster`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use super::process::{cpu_time, rss_kib, Running};
use super::TOKEN;

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";
/// How long the nodes get to start and answer `/health`.
const START_LIMIT: Duration = Duration::from_secs(120);
/// `/health` answered 200 on this many fresh connections per node in a row: with the
/// connections spread at random, a node missed by all of them is a chance of e^-8.
const HEALTH_TRIES_PER_NODE: usize = 8;

/// The PostgreSQL server of the bench (`OCPILE_BENCH_PG`).
fn pg_url() -> String {
    std::env::var("OCPILE_BENCH_PG").unwrap_or_else(|_| DEFAULT_PG.into())
}

/// The NATS server of the bench (`OCPILE_BENCH_NATS`).
fn nats_url() -> String {
    std::env::var("OCPILE_BENCH_NATS").unwrap_or_else(|_| DEFAULT_NATS.into())
}

fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

async fn execute(url: &str, statement: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {url} (OCPILE_BENCH_PG)"))?;
    sqlx::query(statement)
        .execute(&mut conn)
        .await
        .with_context(|| statement.to_owned())?;
    Ok(())
}

/// The nodes of one run.
pub struct Nodes {
    running: Vec<Running>,
    /// Where every node listens: `127.0.0.1:PORT`.
    addr: String,
    pg: String,
    schema: String,
}

impl Nodes {
    /// Starts `k` nodes in the schema `bench_{pid}_{tag}`, their data directories under
    /// `dir`, and waits until each answers `/health`.
    pub async fn start(k: usize, dir: &Path, tag: usize) -> anyhow::Result<Nodes> {
        let pg = pg_url();
        let schema = format!("bench_{}_{tag}", std::process::id());
        execute(&pg, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await?;
        let mut nodes = Nodes {
            running: Vec::new(),
            addr: String::new(),
            pg,
            schema,
        };
        if let Err(e) = nodes.join(k, dir).await {
            nodes.stop();
            nodes.drop_schema().await;
            return Err(e);
        }
        Ok(nodes)
    }

    /// The first node creates the schema's tables and picks the port; the others join it.
    async fn join(&mut self, k: usize, dir: &Path) -> anyhow::Result<()> {
        let db = with_schema(&self.pg, &self.schema);
        let first = spawn(1, "127.0.0.1:0", &db, dir)?;
        self.addr = first.wait_for("ocpile central listening on ", START_LIMIT)?;
        self.running.push(first);
        for i in 2..=k {
            self.running.push(spawn(i, &self.addr, &db, dir)?);
        }
        for node in &self.running[1..] {
            node.wait_for("ocpile central listening on ", START_LIMIT)?;
        }
        self.wait_healthy(k).await
    }

    /// Until `/health` answers 200 on fresh connections many times in a row (and, where the
    /// answers or `GET /api/nodes` name the nodes, every one of them is named).
    async fn wait_healthy(&self, k: usize) -> anyhow::Result<()> {
        let names: BTreeSet<String> = (1..=k).map(node_name).collect();
        // No connection kept: each request is a new connection, handed to one of the nodes.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?;
        let deadline = Instant::now() + START_LIMIT;
        let (mut streak, mut named) = (0, BTreeSet::new());
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            match client
                .get(format!("http://{}/health", self.addr))
                .send()
                .await
            {
                Ok(answer) if answer.status() == reqwest::StatusCode::OK => {
                    streak += 1;
                    let body = answer.text().await.unwrap_or_default();
                    if let Some(name) = serde_json::from_str::<Value>(&body)
                        .ok()
                        .and_then(|v| v["node"].as_str().map(str::to_owned))
                    {
                        named.insert(name);
                    }
                }
                Ok(answer) => {
                    streak = 0;
                    last = format!("{}", answer.status());
                }
                Err(e) => {
                    streak = 0;
                    last = e.to_string();
                }
            }
            if streak >= HEALTH_TRIES_PER_NODE * k
                && (named.is_empty() || named == names)
                && self.listed(&client, &names).await
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!(
            "the {k} nodes on {} did not all answer GET /health with 200 within {} s (last: {last})",
            self.addr,
            START_LIMIT.as_secs()
        )
    }

    /// Whether `GET /api/nodes` lists every node (true where the endpoint is absent).
    async fn listed(&self, client: &reqwest::Client, names: &BTreeSet<String>) -> bool {
        let Ok(answer) = authorized(client, &format!("http://{}/api/nodes", self.addr))
            .send()
            .await
        else {
            return false;
        };
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return true;
        }
        let body = answer.text().await.unwrap_or_default();
        let listed: BTreeSet<String> = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n["name"].as_str().map(str::to_owned))
            .collect();
        names.is_subset(&listed)
    }

    pub fn count(&self) -> usize {
        self.running.len()
    }

    /// The nodes' OCPP URL without the identity.
    pub fn ocpp_url(&self) -> String {
        format!("ws://{}/ocpp/", self.addr)
    }

    /// The API of whichever node takes the connection.
    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn rss_kib(&self) -> u64 {
        self.running.iter().map(|n| rss_kib(n.pid())).sum()
    }

    pub fn cpu_time(&self) -> Duration {
        self.running.iter().map(|n| cpu_time(n.pid())).sum()
    }

    /// The piles connected to each node: `GET /api/nodes`, or, where that is absent, the
    /// `node` of each connected pile in `GET /api/piles`, or, where the piles have none, the
    /// presence records in the database.
    pub async fn piles_per_node(&self, client: &reqwest::Client) -> BTreeMap<String, u64> {
        let get = |path: &str| {
            let request = authorized(client, &self.api_url(path));
            async move {
                let answer = request.send().await.ok()?;
                if !answer.status().is_success() {
                    return None;
                }
                serde_json::from_str::<Value>(&answer.text().await.ok()?).ok()
            }
        };
        if let Some(Value::Array(nodes)) = get("/api/nodes").await {
            return nodes
                .iter()
                .filter_map(|n| Some((n["name"].as_str()?.to_owned(), n["piles"].as_u64()?)))
                .collect();
        }
        let mut counts = BTreeMap::new();
        if let Some(Value::Array(piles)) = get("/api/piles").await {
            for pile in piles.iter().filter(|p| p["connected"] == true) {
                if let Some(node) = pile["node"].as_str() {
                    *counts.entry(node.to_owned()).or_default() += 1;
                }
            }
        }
        if counts.is_empty() {
            counts = self.presence().await.unwrap_or_else(|e| {
                eprintln!("reading the piles' presence: {e:#}");
                BTreeMap::new()
            });
        }
        counts
    }

    /// The connected piles of each node as the database's presence records have them.
    async fn presence(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.pg).await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT node, COUNT(*) FROM {}.piles WHERE connection IS NOT NULL \
             AND node IS NOT NULL GROUP BY node",
            self.schema
        ))
        .fetch_all(&mut conn)
        .await?;
        Ok(rows.into_iter().map(|(n, c)| (n, c as u64)).collect())
    }

    /// Stops every node at once (SIGINT) and waits for them.
    pub fn stop(&mut self) {
        for node in &self.running {
            node.send_interrupt();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &mut self.running {
            node.wait_exit(deadline);
        }
    }

    /// The rows of `meter_values` in the schema.
    pub async fn meter_values_stored(&self) -> anyhow::Result<u64> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.pg).await?;
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {}.meter_values",
            self.schema
        ))
        .fetch_one(&mut conn)
        .await?;
        Ok(n as u64)
    }

    /// The bytes of the schema's tables with their indexes and TOAST.
    pub async fn schema_bytes(&self) -> anyhow::Result<u64> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.pg).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
        )
        .bind(&self.schema)
        .fetch_one(&mut conn)
        .await?;
        Ok(n as u64)
    }

    pub async fn drop_schema(&self) {
        let statement = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        if let Err(e) = execute(&self.pg, &statement).await {
            eprintln!("dropping the bench's schema: {e:#}");
        }
    }
}

fn node_name(i: usize) -> String {
    format!("bench-{i}")
}

fn authorized(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .get(url)
        .header("authorization", format!("Bearer {TOKEN}"))
}

/// Starts node `i` listening on `listen` (shared with the others).
fn spawn(i: usize, listen: &str, db: &str, dir: &Path) -> anyhow::Result<Running> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["central", "--listen", listen, "--reuse-port"])
        .args(["--admission", "open", "--api-token", TOKEN])
        .args([
            "--db",
            db,
            "--cluster",
            &nats_url(),
            "--node",
            &node_name(i),
        ])
        // A node that the bench's load keeps from its heartbeat for a while is not reaped.
        .args(["--node-ttl", "60"])
        // The fleet is stopped first: nothing is left to drain when the nodes stop.
        .args(["--drain-seconds", "0"])
        .arg("--data")
        .arg(dir.join(format!("node-{i}")))
        .env("RUST_LOG", "warn");
    Running::start(cmd, &format!("ocpile central {}", node_name(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_joins_the_url_query() {
        assert_eq!(
            with_schema("postgres://h/test", "bench_1_2"),
            "postgres://h/test?schema=bench_1_2"
        );
        assert_eq!(
            with_schema("postgres://h/test?sslmode=disable", "s"),
            "postgres://h/test?sslmode=disable&schema=s"
        );
    }
}
