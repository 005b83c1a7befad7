//! The OCPP side of the listener: the websocket handshake at `/ocpp/{identity}` (upgrade,
//! subprotocol, then `admission`: the pile's Security Profile or the admission mode; a refusal
//! recorded and counted), then the pile's OCPP-J link for as long as the connection lasts,
//! with its connected and disconnected events and metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use transport::auth::parse_basic;
use transport::identity::identity_from_path;
use transport::{BoxedIo, CloseReason, LinkConfig, SUBPROTOCOL};

use super::{now_ms, Peer};
use crate::handler::PileHandler;
use crate::store::{RefusedRow, WriteOp};
use crate::tap::MessageTap;
use crate::Central;

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
    if let Err((status, why)) = super::admission::admit(&central, &peer, &identity, basic).await {
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

/// The longest a new connection waits for the cluster (its subscriptions, the older
/// connection's close) before its pile is served anyway.
const CLUSTER_WAIT: Duration = Duration::from_secs(3);

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
    let since = now_ms();
    // A handshake that passed before the node began to drain: the drain's last sweep may have
    // missed this connection.
    if central.health().is_draining() {
        handle.close();
    }
    central
        .metrics()
        .connected_piles
        .set(central.sessions().count() as i64);
    // Its subjects answered here before it asks for the older connection's close, so that two
    // nodes completing the pile's handshake at once hear each other (each closes its own, and
    // the pile comes back once); a NATS server out of reach delays the pile only so long.
    let in_cluster = tokio::time::timeout(
        CLUSTER_WAIT,
        crate::cluster::owner::serve(&central, &identity, connection, since),
    );
    if in_cluster.await.is_err() {
        tracing::warn!(
            pile = identity,
            "NATS did not answer: commands through other nodes will not reach this pile"
        );
    }
    let taken_over = tokio::time::timeout(
        CLUSTER_WAIT,
        crate::cluster::owner::take_over(&central, &identity, old, since),
    );
    if let Some(old) = taken_over.await.unwrap_or_else(|_| {
        tracing::warn!(
            pile = identity,
            "NATS did not answer: an older connection elsewhere may live on"
        );
        None
    }) {
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
    // The event and the presence record (which also marks the pile seen) go in one commit.
    let presence = central.writer().write(WriteOp::Connected {
        pile: identity.clone(),
        node: central.node().to_owned(),
        connection: connection as i64,
    });
    let connected = event(&central, &identity, "Connected", format!("from {remote}"));
    let _ = tokio::join!(connected, presence);
    central.changed(format!("pile {identity}"));
    // Its presence is recorded: what it sends is answered from now on.
    let _ = admit.send(true);
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
