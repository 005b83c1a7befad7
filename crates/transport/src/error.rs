/// Why a connection could not be made or accepted.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid URL {0:?}: {1}")]
    InvalidUrl(String, String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("the server refused the handshake with HTTP {status}{}", body.as_deref().map(|b| format!(": {b}")).unwrap_or_default())]
    Refused { status: u16, body: Option<String> },
    #[error("the server did not agree to the ocpp1.6 subprotocol")]
    NoSubprotocol,
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
}

impl From<tokio_tungstenite::tungstenite::Error> for TransportError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error;
        match e {
            Error::Http(resp) => {
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned());
                TransportError::Refused { status, body }
            }
            other => TransportError::WebSocket(Box::new(other)),
        }
    }
}
