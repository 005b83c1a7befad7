//! The websocket client: TCP, TLS when the URL is `wss://`, the `ocpp1.6` subprotocol and
//! HTTP Basic credentials.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header, HeaderValue};

use crate::auth::basic_header;
use crate::{BoxedIo, TransportError, WsStream, SUBPROTOCOL};

#[derive(Clone)]
pub struct ClientConfig {
    /// The whole URL, identity included: `ws://host:port/path/CP001` or `wss://...`.
    pub url: String,
    /// HTTP Basic user and password (Security Profile 1; the user is the identity).
    pub basic: Option<(String, Vec<u8>)>,
    /// Required for `wss://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub max_message_size: usize,
    /// Time allowed for TCP, TLS and websocket handshakes together.
    pub connect_timeout: Duration,
    /// Fixed addresses for host names, like curl's `--resolve`: a connection to
    /// `(host, port)` goes to the address given instead, with TLS still checking `host`.
    pub resolve: Vec<(String, u16, SocketAddr)>,
    /// The local address to connect from (a fleet spreads its connections over several
    /// loopback addresses, each with its own 64k ports); `None`: the system's choice.
    pub bind: Option<IpAddr>,
}

impl ClientConfig {
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            basic: None,
            tls: None,
            max_message_size: crate::DEFAULT_MAX_MESSAGE_SIZE,
            connect_timeout: Duration::from_secs(30),
            resolve: Vec::new(),
            bind: None,
        }
    }
}

/// Opens a websocket to the central system.
pub async fn connect(config: &ClientConfig) -> Result<WsStream, TransportError> {
    tokio::time::timeout(config.connect_timeout, connect_inner(config))
        .await
        .map_err(|_| TransportError::Timeout(config.connect_timeout))?
}

async fn connect_inner(config: &ClientConfig) -> Result<WsStream, TransportError> {
    let bad = |why: &str| TransportError::InvalidUrl(config.url.clone(), why.to_owned());
    let mut request = config
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| bad(&e.to_string()))?;
    let uri = request.uri().clone();
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("the scheme must be ws or wss")),
    };
    let host = uri
        .host()
        .ok_or_else(|| bad("no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let headers = request.headers_mut();
    headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    if let Some((user, password)) = &config.basic {
        let value =
            HeaderValue::from_str(&basic_header(user, password)).map_err(|_| bad("credentials"))?;
        headers.insert(header::AUTHORIZATION, value);
    }

    let pinned = config
        .resolve
        .iter()
        .find(|(h, p, _)| h.eq_ignore_ascii_case(&host) && *p == port)
        .map(|(_, _, addr)| *addr);
    let tcp = match (pinned, config.bind) {
        (Some(addr), None) => TcpStream::connect(addr).await?,
        (None, None) => TcpStream::connect((host.as_str(), port)).await?,
        (pinned, Some(local)) => {
            let remote = match pinned {
                Some(addr) => addr,
                None => tokio::net::lookup_host((host.as_str(), port))
                    .await?
                    .find(|a| a.is_ipv4() == local.is_ipv4())
                    .ok_or_else(|| bad("no address of the bind address's family"))?,
            };
            let socket = if local.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            no_port_at_bind(&socket);
            socket.bind(SocketAddr::new(local, 0))?;
            socket.connect(remote).await?
        }
    };
    tcp.set_nodelay(true)?;
    let io: BoxedIo = if secure {
        let tls = config.tls.clone().ok_or_else(|| {
            TransportError::Tls("wss:// needs a TLS configuration with the server's CA".into())
        })?;
        let name =
            ServerName::try_from(host.clone()).map_err(|e| TransportError::Tls(e.to_string()))?;
        Box::new(TlsConnector::from(tls).connect(name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let ws_config = crate::ws_config(config.max_message_size);
    let (ws, response) =
        tokio_tungstenite::client_async_with_config(request, io, Some(ws_config)).await?;
    let agreed = response
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    if agreed != Some(SUBPROTOCOL) {
        return Err(TransportError::NoSubprotocol);
    }
    Ok(ws)
}

/// Lets the kernel pick the source port at connect time, for the whole address pair, rather
/// than at bind time among the ports free on the address: with thousands of connections from
/// one address, the bind-time search is what a connect costs.
#[cfg(target_os = "linux")]
fn no_port_at_bind(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `on`, which lives across the
    // call; the descriptor is the socket's own. A failure leaves the default behaviour.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn no_port_at_bind(_: &TcpSocket) {}
