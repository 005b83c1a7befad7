//! One listener for everything: OCPP websockets at `/ocpp/{identity}`, the REST API under
//! `/api`, and `/metrics`; TLS when configured (Security Profiles 2 and 3); each connection
//! within the handshake timeout and bound of `handshakes`, each pile pinged.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper_util::rt::TokioIo;
use hyper_util::rt::TokioTimer;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::handshakes::{EarlyRefusal, HandshakeSlot, Handshakes};
use crate::store::{Millis, Repository};
use crate::{secrets, Central, Options, StartError};

/// What the listener knows of a connection.
#[derive(Clone)]
pub struct Peer {
    pub remote: SocketAddr,
    pub tls: bool,
    pub client_certificates: Arc<Vec<CertificateDer<'static>>>,
}

/// A running central system.
pub struct Running {
    pub central: Arc<Central>,
    pub local_addr: SocketAddr,
    /// Whether the API token was generated at this start (to be printed once).
    pub token_generated: bool,
    task: Option<JoinHandle<()>>,
    /// Ends the accept loop (see [`Running::drain`]).
    stop_accepting: tokio::sync::watch::Sender<bool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

fn read(path: &Path) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|e| StartError::Io(path.display().to_string(), e))
}

/// The TLS listener's configuration: client certificates from `--client-ca` or from the
/// central's own CA (`ca_pem`) are verified (Security Profile 3), none required.
fn tls_config(
    options: &Options,
    ca_pem: &str,
) -> Result<Option<Arc<rustls::ServerConfig>>, StartError> {
    let (cert, key) = match (&options.tls_cert, &options.tls_key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) if options.client_ca.is_none() => return Ok(None),
        _ => {
            return Err(StartError::Options(
                "TLS needs both --tls-cert and --tls-key (and --client-ca only with them)".into(),
            ))
        }
    };
    let mut client_ca = match &options.client_ca {
        Some(ca) => read(ca)?,
        None => Vec::new(),
    };
    client_ca.push(b'\n');
    client_ca.extend_from_slice(ca_pem.as_bytes());
    let config = transport::tls::server_config(&read(cert)?, &read(key)?, Some(&client_ca))
        .map_err(|e| StartError::Tls(e.to_string()))?;
    Ok(Some(config))
}

/// The API token: given (`--api-token`, used as it is and not stored), or the one every node
/// of the database shares (the setting `api_token`): carried over once from the data
/// directory's `api-token` file of an older version, else generated at the first start. Whether
/// this start generated the stored one (to print it once).
async fn api_token(options: &Options, repo: &dyn Repository) -> Result<(String, bool), StartError> {
    if let Some(t) = &options.api_token {
        return Ok((t.clone(), false));
    }
    if let Some(stored) = repo.setting(API_TOKEN).await? {
        return Ok((stored, false));
    }
    let path = options.data_dir.join("api-token");
    let (candidate, generated) = match tokio::fs::read_to_string(&path).await {
        Ok(t) if !t.trim().is_empty() => (t.trim().to_owned(), false),
        Ok(_) => (secrets::new_token(), true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (secrets::new_token(), true),
        Err(e) => return Err(StartError::Io(path.display().to_string(), e)),
    };
    // Nodes starting at once each offer one; all take the one stored first.
    let stored = repo.init_setting(API_TOKEN, &candidate).await?;
    let generated = generated && stored == candidate;
    Ok((stored, generated))
}

/// The setting that holds the API token.
const API_TOKEN: &str = "api_token";

/// Opens the store and starts serving.
pub async fn start(options: Options) -> Result<Running, StartError> {
    std::fs::create_dir_all(&options.data_dir)
        .map_err(|e| StartError::Io(options.data_dir.display().to_string(), e))?;
    if !(60..=86_400).contains(&options.heartbeat_interval) {
        return Err(StartError::Options(
            "the heartbeat interval must be within 60..=86400 seconds (FAQ 3.16)".into(),
        ));
    }
    if options.handshake_timeout.is_zero() || options.max_handshakes_per_address == 0 {
        return Err(StartError::Options(
            "the handshake timeout and the handshakes per address must be at least 1".into(),
        ));
    }
    if options.drain > drain::MAX_DRAIN {
        return Err(StartError::Options(
            "the drain may last at most 86400 seconds (a day)".into(),
        ));
    }
    if !options.ping_interval.is_zero() && options.ping_timeout.is_zero() {
        return Err(StartError::Options(
            "with pings, the ping timeout must be at least 1 second".into(),
        ));
    }
    if !crate::cluster::valid_node_name(&options.node) {
        return Err(StartError::Options(format!(
            "--node {:?}: a node's name is 1 to 64 letters, digits, '-' or '_'",
            options.node
        )));
    }
    if options.cluster.is_some() && !options.db_url().starts_with("postgres") {
        return Err(StartError::Options(
            "--cluster needs the database every node shares: --db postgres://... (SQLite is \
             one process's file)"
                .into(),
        ));
    }
    let repo = crate::store::open(&options.db_url()).await?;
    let ca = crate::security::ca::load(&options, &*repo, now_ms()).await?;
    let tls = tls_config(&options, ca.certificate_pem())?;
    let (token, token_generated) = api_token(&options, &*repo).await?;
    let cluster = match &options.cluster {
        Some(url) => {
            let cluster = crate::cluster::Cluster::join(url, &options.node, &*repo).await?;
            // A node that starts again under its name held no connection since.
            repo.leave(&options.node).await?;
            Some(cluster)
        }
        None => {
            // No pile is connected to a central system that just started alone.
            repo.forget_connections().await?;
            None
        }
    };
    crate::firmware::import_older(&*repo, &options.data_dir).await?;
    let metrics = Arc::new(crate::metrics::Metrics::of_node(&options.node));
    let (writer, log) = crate::store::Writer::start(repo.clone(), metrics.clone()).await?;
    let listener = listener::bind(options.listen, options.reuse_port)?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| StartError::Io(options.listen.to_string(), e))?;
    let (campaigns, campaign_queues) = crate::campaign::runner::Campaigns::new(
        repo.clone(),
        options.node.clone(),
        cluster.is_some(),
        options.node_ttl,
    );
    let public_url = match &options.public_url {
        Some(url) => {
            let parsed = url::Url::parse(url)
                .map_err(|e| StartError::Options(format!("--public-url {url:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(StartError::Options(format!(
                    "--public-url {url:?}: an http:// or https:// URL with a host"
                )));
            }
            url.trim_end_matches('/').to_owned()
        }
        None => format!(
            "{}://{local_addr}",
            if tls.is_some() { "https" } else { "http" }
        ),
    };
    let central = Arc::new(Central::new(crate::Parts {
        options,
        repo,
        writer,
        log,
        metrics,
        token,
        public_url,
        campaigns,
        cluster,
        ca,
    }));
    crate::cluster::start(&central, local_addr).await?;
    spawn_retention(central.clone());
    spawn_reaper(central.clone());
    spawn_pulse(central.clone());
    crate::campaign::runner::start(&central, campaign_queues).await?;
    crate::site::runtime::start(&central);
    // Every route, assembled here above the API, the dashboard and the OCPP websockets.
    let router = crate::api::router(central.clone())
        .merge(crate::dashboard::router(central.clone()))
        .merge(
            axum::Router::new()
                .route("/ocpp", axum::routing::get(ocpp_upgrade))
                .route("/ocpp/", axum::routing::get(ocpp_upgrade))
                .route("/ocpp/{*rest}", axum::routing::get(ocpp_upgrade))
                .with_state(central.clone()),
        );
    let acceptor = tls.map(TlsAcceptor::from);
    let handshakes = Handshakes::new(
        central.options().handshake_timeout,
        central.options().max_handshakes_per_address,
        central.metrics().handshakes_in_progress.clone(),
    );
    crate::handshakes::spawn_digest(central.clone(), handshakes.clone());
    let (stop_accepting, stop) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(accept_loop(
        listener,
        stop,
        acceptor,
        router,
        central.clone(),
        handshakes,
    ));
    Ok(Running {
        central,
        local_addr,
        token_generated,
        task: Some(task),
        stop_accepting,
    })
}

/// Samples the frames counted and the piles online every ten seconds.
fn spawn_pulse(central: Arc<Central>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::pulse::EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Some(sample) = central.pulse_sample(now_ms()).await {
                central.pulse().record(sample);
            }
        }
    });
}

/// A lease of this node: shared with the cluster's nodes, or held alone.
fn lease(central: &Central, name: &str) -> crate::cluster::lease::Keeper {
    crate::cluster::lease::Keeper::of_node(
        name,
        central.cluster().map(|c| c.node()),
        central.options().node_ttl,
        central.repo().clone(),
    )
}

/// Removes the message log's rows past its retention, every hour, on the node that holds the
/// lease `log-retention`.
fn spawn_retention(central: Arc<Central>) {
    let keeper = lease(&central, "log-retention");
    let draining = central.clone();
    tokio::spawn(crate::cluster::lease::run_leased(
        keeper,
        Duration::from_secs(3600),
        move || draining.health().is_draining(),
        move || {
            let central = central.clone();
            async move {
                let keep = i64::from(central.options().message_log_days) * 86_400_000;
                match central.repo().prune_log(now_ms() - keep).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("message log: {n} rows past the retention removed"),
                    Err(e) => tracing::warn!("message log retention: {e}"),
                }
            }
        },
    ));
}

/// Every third of the node TTL, on the node that holds the lease `node-reaper`: the nodes not
/// heard from for the TTL are removed, their piles shown offline.
fn spawn_reaper(central: Arc<Central>) {
    let keeper = lease(&central, "node-reaper");
    let ttl = central.options().node_ttl;
    let every = (ttl / 3).max(Duration::from_millis(100));
    let draining = central.clone();
    // Since when this node has run the reaper without a break: a node that has just taken the
    // lease (its holder died, or the database was out of reach and every lease lapsed) first
    // gives every node a TTL to be heard from again.
    let watching = Arc::new(std::sync::Mutex::new(None::<(Instant, Instant)>));
    tokio::spawn(crate::cluster::lease::run_leased(
        keeper,
        every,
        move || draining.health().is_draining(),
        move || {
            let central = central.clone();
            let watching = watching.clone();
            async move {
                let now = Instant::now();
                let since = {
                    let mut watching = watching.lock().expect("reaper lock");
                    let since = match *watching {
                        Some((since, last)) if now - last < every * 3 => since,
                        _ => now,
                    };
                    *watching = Some((since, now));
                    since
                };
                if now - since < ttl {
                    return;
                }
                match central
                    .repo()
                    .reap_nodes(ttl, crate::store::At::Database)
                    .await
                {
                    Ok(gone) if gone.is_empty() => {}
                    Ok(gone) => {
                        for node in &gone {
                            tracing::warn!(
                                "node {node}: not heard from for {} s; removed, its piles offline",
                                ttl.as_secs()
                            );
                        }
                        // The piles of those nodes, on every page.
                        central.changed("*".into());
                    }
                    Err(e) => tracing::warn!("reaping silent nodes: {e}"),
                }
            }
        },
    ));
}

/// Accepts connections until `stop` turns true; then the listener is closed.
async fn accept_loop(
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    central: Arc<Central>,
    handshakes: Arc<Handshakes>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let (tcp, remote) = match accepted {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (tls, router, central, handshakes) = (
            tls.clone(),
            router.clone(),
            central.clone(),
            handshakes.clone(),
        );
        tokio::spawn(connection(tcp, remote, tls, router, central, handshakes));
    }
    // Closed before the drain goes on: it waits for `stop` to be dropped.
    drop(listener);
    drop(stop);
}

/// One accepted connection: its handshake within the handshake timeout (and within the bound
/// of its address), then HTTP.
async fn connection(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
    router: axum::Router,
    central: Arc<Central>,
    handshakes: Arc<Handshakes>,
) {
    let Some(slot) = handshakes.begin(remote) else {
        drop(tcp);
        handshakes
            .refused(&central, remote, EarlyRefusal::TooMany)
            .await;
        return;
    };
    let first = FirstRequest {
        slot,
        deadline: Instant::now() + handshakes.timeout(),
        next_request_timeout: handshakes.timeout(),
    };
    let _ = tcp.set_nodelay(true);
    let refusal = match tls {
        Some(acceptor) => match tokio::time::timeout_at(first.deadline, acceptor.accept(tcp)).await
        {
            Ok(Ok(stream)) => {
                let certs = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default();
                let peer = Peer {
                    remote,
                    tls: true,
                    client_certificates: Arc::new(certs),
                };
                serve(TokioIo::new(stream), peer, router, first).await
            }
            Ok(Err(e)) => Some(EarlyRefusal::Tls(e.to_string())),
            Err(_) => Some(EarlyRefusal::Timeout),
        },
        None => {
            let peer = Peer {
                remote,
                tls: false,
                client_certificates: Arc::new(Vec::new()),
            };
            serve(TokioIo::new(tcp), peer, router, first).await
        }
    };
    // The socket and the handshake's place are released by now; the refusal is recorded after.
    if let Some(refusal) = refusal {
        handshakes.refused(&central, remote, refusal).await;
    }
}

/// What a connection has until its first request head: its place among the handshakes in
/// progress, and a deadline.
struct FirstRequest {
    slot: HandshakeSlot,
    deadline: Instant,
    /// How long a connection kept alive then waits for each next request head.
    next_request_timeout: Duration,
}

/// Serves HTTP on a connection; a refusal when its first request head did not come in time.
async fn serve<I>(
    io: TokioIo<I>,
    peer: Peer,
    router: axum::Router,
    first: FirstRequest,
) -> Option<EarlyRefusal>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let FirstRequest {
        slot,
        deadline,
        next_request_timeout,
    } = first;
    let request_came = Arc::new(tokio::sync::Notify::new());
    let came = request_came.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            came.notify_one();
            req.extensions_mut().insert(peer.clone());
            router.clone().oneshot(req.map(Body::new))
        });
    let mut conn = Box::pin(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(next_request_timeout)
            .serve_connection(io, service)
            .with_upgrades(),
    );
    let ended_early = tokio::select! {
        biased;
        () = request_came.notified() => None,
        result = conn.as_mut() => Some(result),
        () = tokio::time::sleep_until(deadline) => {
            drop(conn);
            return Some(EarlyRefusal::Timeout);
        }
    };
    drop(slot);
    let result = match ended_early {
        // hyper's own header timer may end it first, at about the same time.
        Some(Err(e)) if e.is_timeout() => return Some(EarlyRefusal::Timeout),
        Some(result) => result,
        None => conn.await,
    };
    if let Err(e) = result {
        tracing::debug!("HTTP connection: {e}");
    }
    None
}

mod admission;
mod drain;
pub use drain::DrainError;
mod listener;
mod ocpp;
pub use ocpp::ocpp_upgrade;
#[cfg(test)]
mod route_tests;
