//! The OCPP 1.6J central system: admits piles (registered, approved or open admission, Basic
//! passwords, TLS with client certificates), persists everything they send before it answers
//! (group commit on SQLite or PostgreSQL), sends every command through a REST API, and reads and
//! writes the vendor's keys as fields.

pub mod api;
pub mod campaign;
pub mod config_reader;
pub mod dashboard;
pub mod firmware;
pub mod handler;
mod handshakes;
pub mod metrics;
pub mod pulse;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod store;
mod tap;
pub mod vendor_view;

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
    /// The API token; when absent, read from (or generated into) the data directory.
    pub api_token: Option<String>,
    /// Security Profile 2: the server certificate chain and key (PEM).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Security Profile 3: piles present a certificate from this CA, whose subject CN is their
    /// identity.
    pub client_ca: Option<PathBuf>,
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
            command_timeout: Duration::from_secs(30),
            message_log_days: 30,
            heartbeat_interval: 300,
            boot_retry_interval: 60,
            public_url: None,
            ping_interval: Duration::from_secs(60),
            ping_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            max_handshakes_per_address: 256,
        }
    }

    pub fn db_url(&self) -> String {
        self.db
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("central.db").display()))
    }
}

/// What every part of the central system shares.
pub struct Central {
    pub options: Options,
    pub repo: Arc<dyn Repository>,
    pub writer: Writer,
    pub log: LogWriter,
    pub sessions: Sessions,
    pub metrics: Arc<metrics::Metrics>,
    pub token: String,
    /// Where piles reach this central system (the firmware images' URLs).
    pub public_url: String,
    pub campaigns: campaign::runner::Campaigns,
    /// What changed (`pile ID`, `campaign ID`), for the dashboard's live pages.
    pub changes: tokio::sync::broadcast::Sender<String>,
    /// Frames and piles online over the last hour.
    pub pulse: pulse::Pulse,
}

impl Central {
    /// Tells the dashboard's live pages that something changed (nobody listening: nothing).
    pub fn changed(&self, what: String) {
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(what);
        }
    }

    /// The frames counted so far and the piles online, at `now`.
    pub fn pulse_now(&self, now: store::Millis) -> pulse::Sample {
        pulse::Sample {
            time: now,
            frames: self.metrics.frames(),
            online: self.sessions.count() as u64,
        }
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
}
