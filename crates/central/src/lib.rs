//! The OCPP 1.6J central system: admits piles (registered, approved or open admission; each
//! pile's Security Profile, Basic passwords, TLS and client certificates, never lowered
//! silently), persists everything they send before it answers (group commit on SQLite or
//! PostgreSQL), sends every command through a REST API, and reads and writes the vendor's keys
//! as fields.

pub mod api;
pub mod campaign;
pub mod cluster;
pub mod command_log;
pub mod config_reader;
pub mod dashboard;
pub mod firmware;
pub mod handler;
mod handshakes;
pub mod health;
pub mod metrics;
pub mod pulse;
pub mod secrets;
pub mod security;
pub mod server;
pub mod sessions;
pub mod site;
pub mod store;
mod tap;
pub mod vendor_view;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use server::Running;
use sessions::Sessions;
use store::{LogWriter, Repository, Writer};

/// Who may connect (`--admission`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Only piles registered through the API; an unknown identity is refused at the handshake.
    Registered,
    /// Unknown identities connect and stay Pending until an operator approves them.
    Approve,
    /// Every identity is accepted and registered.
    Open,
}

impl std::str::FromStr for Admission {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "registered" => Ok(Admission::Registered),
            "approve" => Ok(Admission::Approve),
            "open" => Ok(Admission::Open),
            other => Err(format!("{other:?}: registered, approve or open")),
        }
    }
}

/// How the central system runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`; default `DIR/central.db`.
    pub db: Option<String>,
    pub data_dir: PathBuf,
    pub admission: Admission,
    /// The API token, used as it is (not stored); when absent, the one the database keeps
    /// (carried over from the data directory of an older version, or generated).
    pub api_token: Option<String>,
    /// TLS: the server certificate chain and key (PEM); piles of Security Profile 2 and 3
    /// need it.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The CA client certificates are verified against; piles of Security Profile 3 present
    /// one whose subject CN is their identity.
    pub client_ca: Option<PathBuf>,
    /// The central's CA, which signs the piles' CSRs (SignCertificate) and which the TLS
    /// listener trusts for client certificates: its certificate and private key (PEM, PKCS#8);
    /// without them, the one kept in the database (generated at the first start).
    pub ca_cert: Option<PathBuf>,
    pub ca_key: Option<PathBuf>,
    /// The firmware signer of signed campaigns, kept in the database at the start in place of
    /// any: the signing certificate followed by its manufacturer root (one PEM file), and the
    /// certificate's private key (PEM, PKCS#8).
    pub firmware_signing_cert: Option<PathBuf>,
    pub firmware_signing_key: Option<PathBuf>,
    /// How long a command waits for the pile's answer.
    pub command_timeout: Duration,
    /// Days the raw message log and the deviations are kept.
    pub message_log_days: u32,
    /// The heartbeat interval given to accepted piles (60..=86400).
    pub heartbeat_interval: u32,
    /// The interval given with a Pending or Rejected boot.
    pub boot_retry_interval: u32,
    /// The address piles reach this central system at, for the firmware images' URLs
    /// (`http://HOST:PORT`); default the listen address.
    pub public_url: Option<String>,
    /// A websocket ping to every pile this often; zero: none.
    pub ping_interval: Duration,
    /// A connection where nothing arrives (no pong, no frame) within this time of a ping is
    /// dead: closed, and the pile shown offline.
    pub ping_timeout: Duration,
    /// Time from the TCP accept for the TLS handshake and a complete HTTP request head; also
    /// the longest wait for the next request head on an HTTP connection kept alive.
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once from one IP address; more are closed at once. Piles
    /// behind one NAT address share it.
    pub max_handshakes_per_address: usize,
    /// The NATS server of the cluster this node joins (`nats://HOST:PORT`); none: the node
    /// runs alone.
    pub cluster: Option<String>,
    /// This node's name among the cluster's nodes (letters, digits, `-`, `_`).
    pub node: String,
    /// A node not heard from for this long is gone: its piles show offline, its leases pass
    /// to another node.
    pub node_ttl: Duration,
    /// Listen with SO_REUSEPORT, so that several nodes on one host share the port.
    pub reuse_port: bool,
    /// At a stop, the piles' connections are closed spread over this time.
    pub drain: Duration,
}

impl Options {
    pub fn new(data_dir: impl Into<PathBuf>) -> Options {
        Options {
            listen: "127.0.0.1:8180".parse().expect("a valid address"),
            db: None,
            data_dir: data_dir.into(),
            admission: Admission::Approve,
            api_token: None,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            ca_cert: None,
            ca_key: None,
            firmware_signing_cert: None,
            firmware_signing_key: None,
            command_timeout: Duration::from_secs(30),
            message_log_days: 30,
            heartbeat_interval: 300,
            boot_retry_interval: 60,
            public_url: None,
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_handshakes_per_address: 256,
            cluster: None,
            node: cluster::default_node_name(),
            node_ttl: Duration::from_secs(15),
            reuse_port: false,
            drain: Duration::from_secs(30),
        }
    }

    pub fn db_url(&self) -> String {
        self.db
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("central.db").display()))
    }
}

/// What every part of the central system shares: its options, the store and its writers, the
/// live connections, the metrics, the API token, the campaigns and the dashboard's changes.
pub struct Central {
    options: Options,
    repo: Arc<dyn Repository>,
    writer: Writer,
    log: LogWriter,
    sessions: Sessions,
    metrics: Arc<metrics::Metrics>,
    token: String,
    /// Where piles reach this central system (the firmware images' URLs).
    public_url: String,
    campaigns: campaign::runner::Campaigns,
    /// What changed (`pile ID`, `campaign ID`), for the dashboard's live pages.
    changes: tokio::sync::broadcast::Sender<String>,
    /// Frames and piles online over the last hour.
    pulse: pulse::Pulse,
    /// Whether the node drains, and its last database check.
    health: health::Health,
    /// The other nodes, when it runs in a cluster.
    cluster: Option<cluster::Cluster>,
    /// The piles' configuration reads after their boots, a few at a time.
    config_reads: config_reader::ConfigReads,
    /// The CA that signs the piles' CSRs.
    ca: security::ca::Ca,
}

/// What a central system is made of when it starts.
pub struct Parts {
    pub options: Options,
    pub repo: Arc<dyn Repository>,
    pub writer: Writer,
    pub log: LogWriter,
    pub metrics: Arc<metrics::Metrics>,
    pub token: String,
    pub public_url: String,
    pub campaigns: campaign::runner::Campaigns,
    /// The cluster joined (none: the node runs alone).
    pub cluster: Option<cluster::Cluster>,
    /// The CA that signs the piles' CSRs.
    pub ca: security::ca::Ca,
}

impl Central {
    /// The central system of these parts, with no pile connected yet.
    pub fn new(parts: Parts) -> Central {
        Central {
            options: parts.options,
            repo: parts.repo,
            writer: parts.writer,
            log: parts.log,
            sessions: Sessions::default(),
            metrics: parts.metrics,
            token: parts.token,
            public_url: parts.public_url,
            campaigns: parts.campaigns,
            changes: tokio::sync::broadcast::channel(1024).0,
            pulse: pulse::Pulse::default(),
            health: health::Health::default(),
            cluster: parts.cluster,
            config_reads: config_reader::ConfigReads::default(),
            ca: parts.ca,
        }
    }

    /// How it runs.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The store, for reads (writes go through [`Central::writer`]).
    pub fn repo(&self) -> &Arc<dyn Repository> {
        &self.repo
    }

    /// The group-commit writer: a write is answered once it is committed.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The raw message log and the deviations, written in the writer's commits.
    pub fn message_log(&self) -> &LogWriter {
        &self.log
    }

    /// The live connections and the delivery of commands.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn metrics(&self) -> &Arc<metrics::Metrics> {
        &self.metrics
    }

    /// The API token (the dashboard calls the API in-process with it, the CLI prints it).
    pub fn api_token(&self) -> &str {
        &self.token
    }

    /// Whether `given` is the API token (compared in constant time).
    pub fn accepts_token(&self, given: &str) -> bool {
        transport::auth::constant_time_eq(given.as_bytes(), self.token.as_bytes())
    }

    /// Where piles reach this central system (the firmware images' URLs).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The firmware campaigns that run or wait.
    pub fn campaigns(&self) -> &campaign::runner::Campaigns {
        &self.campaigns
    }

    /// The changes the dashboard's live pages follow.
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// The cluster this node runs in (none: it runs alone).
    pub fn cluster(&self) -> Option<&cluster::Cluster> {
        self.cluster.as_ref()
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.options.node
    }

    /// The piles' configuration reads after their boots.
    pub fn config_reads(&self) -> &config_reader::ConfigReads {
        &self.config_reads
    }

    /// The CA that signs the piles' CSRs (SignCertificate).
    pub fn ca(&self) -> &security::ca::Ca {
        &self.ca
    }

    /// Frames and piles online over the last hour.
    pub fn pulse(&self) -> &pulse::Pulse {
        &self.pulse
    }

    /// Whether the node drains, and its last database check (`GET /health`).
    pub fn health(&self) -> &health::Health {
        &self.health
    }

    /// Tells the dashboard's live pages that something changed, on this node and (in a
    /// cluster) the others.
    pub fn changed(&self, what: String) {
        if let Some(cluster) = &self.cluster {
            cluster.share_change(&what);
        }
        self.show_change(what);
    }

    /// Tells this node's live pages that something changed (nobody listening: nothing).
    pub fn show_change(&self, what: String) {
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(what);
        }
    }

    /// The frames counted so far and this node's piles online, at `now`.
    pub fn pulse_now(&self, now: store::Millis) -> pulse::Sample {
        pulse::Sample {
            time: now,
            frames: self.metrics.frames(),
            online: self.sessions.count() as u64,
        }
    }

    /// The sample of the pulse at `now`: the frames this node counted, and the piles online,
    /// alone this node's connections, in a cluster every node's (their presence records); none
    /// when the store does not answer (logged).
    pub async fn pulse_sample(&self, now: store::Millis) -> Option<pulse::Sample> {
        let mut sample = self.pulse_now(now);
        if self.cluster.is_some() {
            match self.repo.nodes().await {
                Ok(nodes) => {
                    sample.online = nodes.iter().map(|n| n.piles.max(0) as u64).sum();
                }
                Err(e) => {
                    tracing::warn!("pulse: the piles online on every node unknown ({e})");
                    return None;
                }
            }
        }
        Some(sample)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    #[error(transparent)]
    Ca(#[from] security::ca::CaError),
    #[error(transparent)]
    FirmwareSigner(#[from] campaign::signer::SignerError),
}
