//! One listener for everything: OCPP websockets at `/ocpp/{identity}`, the REST API under
//! `/api`, and `/metrics`; TLS when configured (Security Profiles 2 and 3); each connection
//! within the handshake timeout and bound of `handshakes`, each pile pinged.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hyper_util::rt::TokioIo;
use hyper_util::rt::TokioTimer;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tower::ServiceExt;
use transport::auth::parse_basic;
use transport::identity::identity_from_path;
use transport::{BoxedIo, CloseReason, LinkConfig, SUBPROTOCOL};

use crate::handler::PileHandler;
use crate::handshakes::{EarlyRefusal, HandshakeSlot, Handshakes};
use crate::store::{Millis, RefusedRow, Repository, WriteOp};
use crate::tap::MessageTap;
use crate::{secrets, Admission, Central, Options, StartError};

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

impl Running {
    /// Serves until the task ends (never, unless the listener fails).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
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

fn tls_config(options: &Options) -> Result<Option<Arc<rustls::ServerConfig>>, StartError> {
    let (cert, key) = match (&options.tls_cert, &options.tls_key) {
        (Some(c), Some(k)) => (c, k),
        (None, None) if options.client_ca.is_none() => return Ok(None),
        _ => {
            return Err(StartError::Options(
                "TLS needs both --tls-cert and --tls-key (and --client-ca only with them)".into(),
            ))
        }
    };
    let client_ca = match &options.client_ca {
        Some(ca) => Some(read(ca)?),
        None => None,
    };
    let config = transport::tls::server_config(&read(cert)?, &read(key)?, client_ca.as_deref())
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
    let tls = tls_config(&options)?;
    let repo = crate::store::open(&options.db_url()).await?;
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
    }));
    crate::cluster::start(&central, local_addr).await?;
    spawn_retention(central.clone());
    spawn_reaper(central.clone());
    spawn_pulse(central.clone());
    crate::campaign::runner::start(&central, campaign_queues).await?;
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
            central.pulse().record(central.pulse_now(now_ms()));
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
    tokio::spawn(crate::cluster::lease::run_leased(
        keeper,
        Duration::from_secs(3600),
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
    tokio::spawn(crate::cluster::lease::run_leased(
        keeper,
        every,
        move || {
            let central = central.clone();
            async move {
                let before = now_ms() - i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
                match central.repo().reap_nodes(before).await {
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

fn offers_subprotocol(req: &Request) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

fn is_upgrade(req: &Request) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    has(header::CONNECTION, "upgrade") && has(header::UPGRADE, "websocket")
}

/// Refuses a handshake: recorded (time, remote, identity, reason), counted, answered.
async fn refuse(
    central: &Central,
    peer: &Peer,
    identity: Option<&str>,
    status: StatusCode,
    reason: String,
) -> Response {
    tracing::warn!(remote = %peer.remote, identity, "handshake refused ({status}): {reason}");
    central
        .metrics()
        .refused_handshakes
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: refusal_kind(status).into(),
        })
        .inc();
    let row = RefusedRow {
        time: now_ms(),
        remote: peer.remote.to_string(),
        identity: identity.map(str::to_owned),
        reason: reason.clone(),
        http_status: i64::from(status.as_u16()),
    };
    if let Err(e) = central.writer().write(WriteOp::Refused(row)).await {
        tracing::error!("a refused handshake was not recorded: {e}");
    }
    central.changed("handshake".into());
    let mut resp = (status, reason).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"OCPP\", charset=\"UTF-8\""),
        );
    }
    resp
}

fn refusal_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "protocol",
        401 => "credentials",
        403 => "not_allowed",
        404 => "identity",
        _ => "other",
    }
}

/// `GET /ocpp/{identity}`: the websocket handshake, with admission.
pub async fn ocpp_upgrade(
    State(central): State<Arc<Central>>,
    Extension(peer): Extension<Peer>,
    mut req: Request,
) -> Response {
    let identity = match identity_from_path(req.uri().path()) {
        Ok(id) => id,
        Err(e) => return refuse(&central, &peer, None, StatusCode::NOT_FOUND, e.to_string()).await,
    };
    let id = Some(identity.as_str());
    if !is_upgrade(&req) {
        let why = "a websocket upgrade request is required".to_string();
        return refuse(&central, &peer, id, StatusCode::BAD_REQUEST, why).await;
    }
    if !offers_subprotocol(&req) {
        let why = "the client does not offer the ocpp1.6 subprotocol".to_string();
        return refuse(&central, &peer, id, StatusCode::BAD_REQUEST, why).await;
    }
    if central.health().is_draining() {
        let why = "this node is stopping: connect again (to another node)".to_string();
        return refuse(&central, &peer, id, StatusCode::SERVICE_UNAVAILABLE, why).await;
    }
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        let why = "the request has no Sec-WebSocket-Key".to_string();
        return refuse(&central, &peer, id, StatusCode::BAD_REQUEST, why).await;
    };
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_basic);
    if let Err((status, why)) = admit(&central, &peer, &identity, basic).await {
        return refuse(&central, &peer, id, status, why).await;
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let central2 = central.clone();
    let remote = peer.remote;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io: BoxedIo = Box::new(TokioIo::new(upgraded));
                let config = transport::ws_config(transport::DEFAULT_MAX_MESSAGE_SIZE);
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
                attach(central2, identity, ws, remote).await;
            }
            Err(e) => tracing::warn!(%remote, "websocket upgrade failed: {e}"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .expect("base64 is a header value"),
    );
    h.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    resp
}

/// Decides whether a pile may connect: client certificate (Profile 3), password (Profile 1),
/// and the admission mode for identities not registered.
async fn admit(
    central: &Central,
    peer: &Peer,
    identity: &str,
    basic: Option<(String, Vec<u8>)>,
) -> Result<(), (StatusCode, String)> {
    let internal = |e: crate::store::StoreError| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store failed: {e}"),
        )
    };
    if central.options().client_ca.is_some() {
        let cn = peer
            .client_certificates
            .first()
            .and_then(|c| secrets::subject_common_name(c));
        match cn {
            Some(cn) if cn == identity => {}
            Some(cn) => {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("the client certificate's CN {cn:?} is not the identity"),
                ))
            }
            None => {
                return Err((
                    StatusCode::FORBIDDEN,
                    "no client certificate with a subject CN".into(),
                ))
            }
        }
    }
    let pile = central.repo().pile(identity).await.map_err(internal)?;
    match pile {
        Some(p) => {
            if let Some(hash) = p.password_hash {
                let Some((user, password)) = basic else {
                    return Err((StatusCode::UNAUTHORIZED, "no Basic credentials".into()));
                };
                if user != identity {
                    return Err((
                        StatusCode::UNAUTHORIZED,
                        format!("the Basic user {user:?} is not the identity"),
                    ));
                }
                let ok =
                    tokio::task::spawn_blocking(move || secrets::verify_password(&password, &hash))
                        .await
                        .unwrap_or(false);
                if !ok {
                    return Err((StatusCode::UNAUTHORIZED, "wrong password".into()));
                }
            }
            Ok(())
        }
        None => {
            let registration = match central.options().admission {
                Admission::Registered => {
                    return Err((
                        StatusCode::FORBIDDEN,
                        "unknown pile (not registered)".into(),
                    ))
                }
                Admission::Approve => "Pending",
                Admission::Open => "Accepted",
            };
            central
                .writer()
                .write(WriteOp::AdmitPile {
                    id: identity.to_owned(),
                    registration: registration.into(),
                })
                .await
                .map_err(internal)?;
            Ok(())
        }
    }
}

async fn event(central: &Central, pile: &str, kind: &str, detail: String) {
    let op = WriteOp::Event {
        pile: pile.to_owned(),
        kind: kind.to_owned(),
        detail,
        firmware_status: None,
        diagnostics_status: None,
    };
    if let Err(e) = central.writer().write(op).await {
        tracing::warn!(pile, "event {kind} not recorded: {e}");
    }
}

/// Runs the OCPP-J link of a connection that completed its handshake.
async fn attach(
    central: Arc<Central>,
    identity: String,
    ws: transport::WsStream,
    remote: SocketAddr,
) {
    let _task = central.sessions().task_started();
    let (admit, admitted) = tokio::sync::watch::channel(false);
    let handler = Arc::new(PileHandler::new(
        identity.clone(),
        central.clone(),
        admitted,
    ));
    let tap = Arc::new(MessageTap::new(
        &identity,
        central.message_log().clone(),
        central.metrics().clone(),
    ));
    let link = LinkConfig {
        call_timeout: central.options().command_timeout,
        policy: ocpp::Policy::Lenient,
        id_prefix: "cs-".into(),
        ping_interval: Some(central.options().ping_interval).filter(|d| !d.is_zero()),
        pong_timeout: central.options().ping_timeout,
        ..LinkConfig::default()
    };
    let handle = transport::spawn_rpc_tapped(ws, link, handler, Some(tap));
    let (connection, old) = central.sessions().insert(&identity, handle.clone(), remote);
    // A handshake that passed before the node began to drain: the drain's last sweep may have
    // missed this connection.
    if central.health().is_draining() {
        handle.close();
    }
    central
        .metrics()
        .connected_piles
        .set(central.sessions().count() as i64);
    if let Some(old) = crate::cluster::owner::take_over(&central, &identity, old).await {
        let on = old
            .node
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default();
        tracing::info!(pile = identity, old = %old.remote, new = %remote, "a newer connection replaces the older{on}");
        event(
            &central,
            &identity,
            "ConnectionReplaced",
            format!(
                "the connection from {}{on} was closed: a newer one from {remote} replaces it",
                old.remote
            ),
        )
        .await;
    }
    // Its subjects answered here before its presence says so.
    crate::cluster::owner::serve(&central, &identity, connection).await;
    event(&central, &identity, "Connected", format!("from {remote}")).await;
    central.changed(format!("pile {identity}"));
    let _ = central
        .writer()
        .write(WriteOp::Connected {
            pile: identity.clone(),
            node: central.node().to_owned(),
            connection: connection as i64,
        })
        .await;
    // Its presence is recorded: what it sends is answered from now on.
    let _ = admit.send(true);
    let _ = central
        .writer()
        .write(WriteOp::Seen {
            pile: identity.clone(),
        })
        .await;
    let reason = handle.closed().await;
    let here = central.sessions().remove(&identity, connection);
    let _ = central
        .writer()
        .write(WriteOp::Disconnected {
            pile: identity.clone(),
            node: central.node().to_owned(),
            connection: connection as i64,
        })
        .await;
    let current = !crate::cluster::owner::released(&central, &identity, connection) && here;
    central
        .metrics()
        .disconnections
        .get_or_create(&crate::metrics::ReasonLabels {
            reason: disconnection_kind(&reason, current).into(),
        })
        .inc();
    if reason == CloseReason::PongTimeout {
        tracing::warn!(pile = identity, %remote, "no answer to a ping: the connection is dead and closed");
    }
    central
        .metrics()
        .connected_piles
        .set(central.sessions().count() as i64);
    central.changed(format!("pile {identity}"));
    event(
        &central,
        &identity,
        "Disconnected",
        format!(
            "from {remote}: {reason}{}",
            if current { "" } else { " (replaced)" }
        ),
    )
    .await;
}

/// The `reason` label of a connection that ended.
fn disconnection_kind(reason: &CloseReason, current: bool) -> &'static str {
    match reason {
        _ if !current => "replaced",
        CloseReason::Local => "closed_here",
        CloseReason::Remote(_) => "closed_by_pile",
        CloseReason::PongTimeout => "ping_timeout",
        CloseReason::MessageTooBig => "message_too_big",
        CloseReason::WriteTimeout => "write_timeout",
        CloseReason::Error(_) => "error",
    }
}

mod drain;
pub use drain::DrainError;
mod listener;
#[cfg(test)]
mod route_tests;
