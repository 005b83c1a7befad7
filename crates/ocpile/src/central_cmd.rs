//! `ocpile central`: the central system.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use central::{Admission, Options};

#[derive(clap::Args)]
pub struct CentralArgs {
    /// Address of OCPP (`/ocpp/{identity}`), the REST API (`/api`) and `/metrics`.
    #[arg(long, default_value = "127.0.0.1:8180")]
    listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB` (with `?schema=NAME` to work in a schema).
    /// Default: sqlite://DIR/central.db.
    #[arg(long)]
    db: Option<String>,
    /// The data directory: the SQLite database, the API token.
    #[arg(long, default_value = "./ocpile-data")]
    data: PathBuf,
    /// Who may connect: `registered` (only piles registered through the API), `approve`
    /// (unknown piles wait, Pending, for an operator), `open` (everyone is registered).
    #[arg(long, default_value = "approve")]
    admission: Admission,
    /// The API token (also OCPILE_API_TOKEN); default: the one in the data directory,
    /// generated and printed at the first start.
    #[arg(long, env = "OCPILE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Server certificate chain, PEM (wss://; needed for piles of Security Profile 2 and 3).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// Server private key, PEM.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// CA the piles' client certificates are verified against (needed for piles of Security
    /// Profile 3, whose certificate's subject CN must be their identity).
    #[arg(long)]
    client_ca: Option<PathBuf>,
    /// The central's CA certificate, PEM: it signs the piles' CSRs (SignCertificate), and the
    /// TLS listener trusts it for client certificates; default: the one kept in the database,
    /// generated at the first start.
    #[arg(long, requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// The CA's private key, PEM (PKCS#8).
    #[arg(long, requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// The firmware signer of signed campaigns: a PEM file with the signing certificate, then
    /// the manufacturer root that issued it; kept in the database at the start, in place of
    /// the one set through the API.
    #[arg(long, requires = "firmware_signing_key")]
    firmware_signing_cert: Option<PathBuf>,
    /// The signing certificate's private key, PEM (PKCS#8, ECDSA P-256 or RSA).
    #[arg(long, requires = "firmware_signing_cert")]
    firmware_signing_key: Option<PathBuf>,
    /// Seconds a command waits for the pile's answer.
    #[arg(long, default_value_t = 30)]
    command_timeout: u64,
    /// Days the raw message log is kept.
    #[arg(long, default_value_t = 30)]
    message_log_days: u32,
    /// HeartbeatInterval given to accepted piles in the BootNotification answer (60..=86400).
    #[arg(long, default_value_t = 300)]
    heartbeat_interval: u32,
    /// The address piles reach this central system at (`http://HOST:PORT`), for the URLs of
    /// the firmware images it serves; default the listen address.
    #[arg(long)]
    public_url: Option<String>,
    /// Seconds between websocket pings to each pile (0: no pings). With --ping-timeout, how
    /// soon a pile whose network dropped is shown offline: at most the sum of the two.
    #[arg(long, default_value_t = 60)]
    ping_interval: u64,
    /// Seconds after a ping within which something must arrive from the pile (its pong or any
    /// other frame); after that the connection is closed as dead and the pile shown offline.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    ping_timeout: u64,
    /// Seconds a new connection has, from the TCP accept, for its TLS handshake and a complete
    /// HTTP request (the websocket upgrade); then it is closed and counted as refused. Also the
    /// longest wait for the next request on an HTTP connection kept alive.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    handshake_timeout: u64,
    /// Handshakes in progress at once from one IP address; a connection past it is closed at
    /// once and counted as refused. Piles behind one NAT address share it: keep it generous.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    max_handshakes_per_address: u64,
    /// Join the cluster of nodes that share this NATS server (`nats://HOST:4222`) and the
    /// PostgreSQL database of --db: commands reach a pile on whichever node holds it, campaigns
    /// run on one node at a time. Without it the node runs alone.
    #[arg(long, value_name = "NATS_URL")]
    cluster: Option<String>,
    /// This node's name in the cluster (letters, digits, `-`, `_`); default HOSTNAME-PID.
    #[arg(long)]
    node: Option<String>,
    /// Seconds after which a node not heard from is gone: its piles show offline and its
    /// campaigns pass to another node.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..))]
    node_ttl: u64,
    /// Listen with SO_REUSEPORT: several nodes on one host share the --listen port and the
    /// kernel spreads the piles over them.
    #[arg(long)]
    reuse_port: bool,
    /// At a stop (SIGTERM or Ctrl-C), the seconds over which the piles' connections are closed,
    /// spread evenly so that they reconnect elsewhere without a storm (0: all at once); then
    /// the node exits once everything they sent is committed. A second signal stops it at once.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(..=86_400))]
    drain_seconds: u64,
}

pub fn options(args: CentralArgs) -> Options {
    let mut o = Options::new(args.data);
    o.listen = args.listen;
    o.db = args.db;
    o.admission = args.admission;
    o.api_token = args.api_token.filter(|t| !t.is_empty());
    o.tls_cert = args.tls_cert;
    o.tls_key = args.tls_key;
    o.client_ca = args.client_ca;
    o.ca_cert = args.ca_cert;
    o.ca_key = args.ca_key;
    o.firmware_signing_cert = args.firmware_signing_cert;
    o.firmware_signing_key = args.firmware_signing_key;
    o.command_timeout = Duration::from_secs(args.command_timeout.max(1));
    o.message_log_days = args.message_log_days;
    o.heartbeat_interval = args.heartbeat_interval;
    o.public_url = args.public_url;
    o.ping_interval = Duration::from_secs(args.ping_interval);
    o.ping_timeout = Duration::from_secs(args.ping_timeout);
    o.handshake_timeout = Duration::from_secs(args.handshake_timeout);
    o.max_handshakes_per_address =
        usize::try_from(args.max_handshakes_per_address).unwrap_or(usize::MAX);
    o.cluster = args.cluster;
    if let Some(node) = args.node {
        o.node = node;
    }
    o.node_ttl = Duration::from_secs(args.node_ttl);
    o.reuse_port = args.reuse_port;
    o.drain = Duration::from_secs(args.drain_seconds);
    o
}

/// The next SIGTERM or ctrl-c (SIGINT).
async fn stop_signal(terminate: &mut tokio::signal::unix::Signal) -> &'static str {
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "ctrl-c",
    }
}

pub fn run(args: CentralArgs) -> anyhow::Result<()> {
    let options = options(args);
    // A socket per pile: room for the fleet's hundred thousand and more.
    crate::limits::raise_file_limit(262_144);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let tls = options.tls_cert.is_some();
        let running = central::server::start(options)
            .await
            .context("starting the central system")?;
        let addr = running.local_addr;
        let (ws, http) = if tls {
            ("wss", "https")
        } else {
            ("ws", "http")
        };
        eprintln!("ocpile central listening on {addr}");
        eprintln!("  OCPP:    {ws}://{addr}/ocpp/{{identity}}");
        eprintln!("  API:     {http}://{addr}/api/  (Authorization: Bearer <token>)");
        eprintln!("  metrics: {http}://{addr}/metrics");
        eprintln!("  health:  {http}://{addr}/health");
        if running.token_generated {
            eprintln!(
                "  API token (generated now, kept in the database): {}",
                running.central.api_token()
            );
        }
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("listening for SIGTERM")?;
        let drain = running.central.options().drain;
        let signal = stop_signal(&mut terminate).await;
        eprintln!(
            "{signal}: draining (connections closed over {} s, then the last writes committed)",
            drain.as_secs()
        );
        tokio::select! {
            drained = running.drain(drain) => {
                drained.context("draining")?;
                eprintln!("drained: every write committed; stopping");
                Ok(())
            }
            signal = stop_signal(&mut terminate) => {
                anyhow::bail!("{signal} again: stopping at once, without the drain's end")
            }
        }
    })
}
