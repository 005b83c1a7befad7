//! The websocket server: TLS (optional), the `ocpp1.6` subprotocol, identity from the URL path,
//! and authentication, before a connection is handed over.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, StatusCode};

use crate::auth::{parse_basic, AuthDecision, Authenticator, Handshake};
use crate::identity::identity_from_path;
use crate::{BoxedIo, WsStream, SUBPROTOCOL};

pub struct ServerConfig {
    /// TLS (Security Profile 2/3) when set; plain `ws://` otherwise.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub authenticator: Arc<dyn Authenticator>,
    pub max_message_size: usize,
    /// Time allowed for the TLS and websocket handshakes together.
    pub handshake_timeout: Duration,
}

impl ServerConfig {
    pub fn new(authenticator: Arc<dyn Authenticator>) -> Self {
        ServerConfig {
            tls: None,
            authenticator,
            max_message_size: crate::DEFAULT_MAX_MESSAGE_SIZE,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// A charge point that completed the handshake.
pub struct Accepted {
    pub identity: String,
    pub remote: SocketAddr,
    pub path: String,
    pub client_certificates: Vec<CertificateDer<'static>>,
    pub ws: WsStream,
}

/// Listens and hands over authenticated connections.
pub struct WsServer {
    local_addr: SocketAddr,
    accepted: mpsc::Receiver<Accepted>,
    task: JoinHandle<()>,
}

impl Drop for WsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WsServer {
    pub async fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> std::io::Result<WsServer> {
        WsServer::listen(TcpListener::bind(addr).await?, config)
    }

    /// Serves on a listener made by the caller (with socket options of its own).
    pub fn listen(listener: TcpListener, config: ServerConfig) -> std::io::Result<WsServer> {
        let local_addr = listener.local_addr()?;
        let (tx, accepted) = mpsc::channel(64);
        let config = Arc::new(config);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, remote) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (config, tx) = (config.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(
                        config.handshake_timeout,
                        handshake(tcp, remote, &config),
                    )
                    .await
                    {
                        Ok(Ok(accepted)) => {
                            tracing::info!(identity = %accepted.identity, %remote, "charge point connected");
                            let _ = tx.send(accepted).await;
                        }
                        Ok(Err(e)) => tracing::warn!(%remote, "handshake failed: {e}"),
                        Err(_) => tracing::warn!(%remote, "handshake timed out"),
                    }
                });
            }
        });
        Ok(WsServer {
            local_addr,
            accepted,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next connection that completed its handshake.
    pub async fn accept(&mut self) -> Option<Accepted> {
        self.accepted.recv().await
    }
}

fn refuse(status: StatusCode, reason: String, challenge: bool) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(reason));
    *resp.status_mut() = status;
    if challenge {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"OCPP\", charset=\"UTF-8\""),
        );
    }
    resp
}

fn offers_subprotocol(req: &Request) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL)
}

// The callback's error type is tungstenite's HTTP response.
#[allow(clippy::result_large_err)]
async fn handshake(
    tcp: TcpStream,
    remote: SocketAddr,
    config: &ServerConfig,
) -> Result<Accepted, crate::TransportError> {
    tcp.set_nodelay(true)?;
    let (io, client_certificates): (BoxedIo, Vec<CertificateDer<'static>>) = match &config.tls {
        Some(tls) => {
            let stream = TlsAcceptor::from(tls.clone()).accept(tcp).await?;
            let certs = stream
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default();
            (Box::new(stream), certs)
        }
        None => (Box::new(tcp), Vec::new()),
    };
    let mut outcome: Option<(String, String)> = None;
    let tls = config.tls.is_some();
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let path = req.uri().path().to_owned();
        let identity = identity_from_path(&path).map_err(|e| {
            tracing::warn!(%remote, path, "refused: {e}");
            refuse(StatusCode::NOT_FOUND, e.to_string(), false)
        })?;
        if !offers_subprotocol(req) {
            tracing::warn!(%remote, identity, "refused: the client does not offer the ocpp1.6 subprotocol");
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "the ocpp1.6 subprotocol is required".into(),
                false,
            ));
        }
        let basic = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_basic);
        let decision = config.authenticator.authenticate(&Handshake {
            identity: &identity,
            remote,
            basic: basic.as_ref().map(|(u, p)| (u.as_str(), p.as_slice())),
            client_certificates: &client_certificates,
            tls,
        });
        match decision {
            AuthDecision::Accept => {}
            AuthDecision::Unauthorized(why) => {
                tracing::warn!(%remote, identity, "refused (401): {why}");
                return Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "authentication required".into(),
                    true,
                ));
            }
            AuthDecision::Forbidden(why) => {
                tracing::warn!(%remote, identity, "refused (403): {why}");
                return Err(refuse(StatusCode::FORBIDDEN, "not allowed".into(), false));
            }
        }
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            header::HeaderValue::from_static(SUBPROTOCOL),
        );
        outcome = Some((identity, path));
        Ok(resp)
    };
    let ws_config = crate::ws_config(config.max_message_size);
    let ws = tokio_tungstenite::accept_hdr_async_with_config(io, callback, Some(ws_config)).await?;
    let (identity, path) = outcome
        .ok_or_else(|| crate::TransportError::Tls("handshake ended without an identity".into()))?;
    Ok(Accepted {
        identity,
        remote,
        path,
        client_certificates,
        ws,
    })
}
