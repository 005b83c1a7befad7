//! The central system under test: ours on SQLite, ours on K nodes (PostgreSQL and NATS), or
//! the minimal central on PyPI's `ocpp`; started, measured and stopped the same way.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::nodes::Nodes;
use super::process::{cpu_between, cpu_of_named, cpu_time, rss_kib, Running};
use super::{PEER, TOKEN};

/// Which central a run measures.
pub enum Central {
    /// One `ocpile central` on SQLite in this data directory.
    Ours {
        data: PathBuf,
    },
    /// `ocpile central` on this many nodes.
    Nodes(usize),
    Peer {
        python: PathBuf,
    },
}

impl Central {
    pub fn name(&self) -> &'static str {
        match self {
            Central::Ours { .. } => "ocpile central",
            Central::Nodes(_) => "ocpile central, PostgreSQL + NATS",
            Central::Peer { .. } => "PyPI ocpp 2.x",
        }
    }

    /// The run's working directory's name.
    pub fn short(&self) -> &'static str {
        match self {
            Central::Ours { .. } => "ours",
            Central::Nodes(_) => "nodes",
            Central::Peer { .. } => "peer",
        }
    }

    /// Starts it, its working files under `dir`; `piles` names the PostgreSQL schema.
    pub async fn start(&self, dir: &Path, piles: usize) -> anyhow::Result<Server> {
        match self {
            Central::Ours { data } => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.args(["central", "--listen", "127.0.0.1:0", "--admission", "open"])
                    .args(["--api-token", TOKEN, "--data"])
                    .arg(data)
                    .env("RUST_LOG", "warn");
                let central = Running::start(cmd, "ocpile central")?;
                let addr =
                    central.wait_for("ocpile central listening on ", Duration::from_secs(60))?;
                Ok(Server::One {
                    running: central,
                    addr,
                    db: data.join("central.db"),
                })
            }
            Central::Nodes(k) => Ok(Server::Nodes(Nodes::start(*k, dir, piles).await?)),
            Central::Peer { python } => {
                let script = dir.join("peer_central.py");
                std::fs::write(&script, PEER)?;
                let db = dir.join("peer.db");
                let mut cmd = Command::new(python);
                cmd.arg("-u").arg(&script).arg(&db);
                let central = Running::start(cmd, "the PyPI-ocpp central")?;
                let port = central.wait_for("PORT ", Duration::from_secs(60))?;
                Ok(Server::One {
                    running: central,
                    addr: format!("127.0.0.1:{port}"),
                    db,
                })
            }
        }
    }
}

/// CPU time of the central's processes at one moment.
pub struct CpuReading {
    central: Duration,
    postgres: HashMap<u32, Duration>,
}

/// A started central.
pub enum Server {
    /// One process with its SQLite database.
    One {
        running: Running,
        addr: String,
        db: PathBuf,
    },
    Nodes(Nodes),
}

impl Server {
    /// The OCPP URL without the identity.
    pub fn ocpp_url(&self) -> String {
        match self {
            Server::One { addr, .. } => format!("ws://{addr}/ocpp/"),
            Server::Nodes(nodes) => nodes.ocpp_url(),
        }
    }

    /// An API path on (one of) the central's processes.
    pub fn api_url(&self, path: &str) -> String {
        match self {
            Server::One { addr, .. } => format!("http://{addr}{path}"),
            Server::Nodes(nodes) => nodes.api_url(path),
        }
    }

    pub fn nodes(&self) -> usize {
        match self {
            Server::One { .. } => 1,
            Server::Nodes(nodes) => nodes.count(),
        }
    }

    /// RSS of every process of the central (KiB).
    pub fn rss_kib(&self) -> u64 {
        match self {
            Server::One { running, .. } => rss_kib(running.pid()),
            Server::Nodes(nodes) => nodes.rss_kib(),
        }
    }

    pub fn cpu(&self) -> CpuReading {
        match self {
            Server::One { running, .. } => CpuReading {
                central: cpu_time(running.pid()),
                postgres: HashMap::new(),
            },
            Server::Nodes(nodes) => CpuReading {
                central: nodes.cpu_time(),
                postgres: cpu_of_named("postgres"),
            },
        }
    }

    /// The CPU the central's processes used since `from`, and PostgreSQL's (its processes
    /// on this machine, on nodes only), as shares of one core over `over`.
    pub fn cpu_share(&self, from: &CpuReading, over: Duration) -> (f64, Option<f64>) {
        let now = self.cpu();
        let share = |d: Duration| d.as_secs_f64() / over.as_secs_f64() * 100.0;
        let postgres = matches!(self, Server::Nodes(_))
            .then(|| share(cpu_between(&from.postgres, &now.postgres)));
        (share(now.central.saturating_sub(from.central)), postgres)
    }

    /// The connected piles of each node (nodes only).
    pub async fn piles_per_node(&self, client: &reqwest::Client) -> BTreeMap<String, u64> {
        match self {
            Server::One { .. } => BTreeMap::new(),
            Server::Nodes(nodes) => nodes.piles_per_node(client).await,
        }
    }

    /// What its database holds now, in bytes (tables and indexes): SQLite's pages in use, or
    /// the PostgreSQL schema's relations.
    pub async fn db_bytes(&self) -> Option<u64> {
        match self {
            Server::One { db, .. } => sqlite_bytes(db).await,
            Server::Nodes(nodes) => nodes.schema_bytes().await.ok(),
        }
    }

    /// Stops it; the MeterValues rows in its database. A PostgreSQL schema is dropped then.
    pub async fn finish(&mut self) -> u64 {
        match self {
            Server::One { running, db, .. } => {
                running.interrupt(Duration::from_secs(30));
                count_sqlite_rows(db).await
            }
            Server::Nodes(nodes) => {
                nodes.stop();
                let stored = nodes.meter_values_stored().await.unwrap_or_else(|e| {
                    eprintln!("counting the MeterValues rows: {e:#}");
                    0
                });
                nodes.drop_schema().await;
                stored
            }
        }
    }
}

/// The bytes a SQLite database holds in pages in use (the WAL's committed pages included,
/// the free list left out): what it grew by, whatever the WAL file's size at that moment.
async fn sqlite_bytes(db: &Path) -> Option<u64> {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.ok()?;
    let mut pragma = [0i64; 3];
    for (value, name) in pragma
        .iter_mut()
        .zip(["page_count", "freelist_count", "page_size"])
    {
        *value = sqlx::query_scalar(&format!("PRAGMA {name}"))
            .fetch_one(&mut conn)
            .await
            .ok()?;
    }
    let [pages, free, size] = pragma;
    u64::try_from((pages - free) * size).ok()
}

async fn count_sqlite_rows(db: &Path) -> u64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let Ok(mut conn) = sqlx::SqliteConnection::connect(&url).await else {
        return 0;
    };
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM meter_values")
        .fetch_one(&mut conn)
        .await
        .map(|n| n as u64)
        .unwrap_or(0)
}
