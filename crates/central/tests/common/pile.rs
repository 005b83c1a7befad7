//! A pile as a raw websocket client of a node.

use std::net::SocketAddr;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[allow(dead_code)]
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects the pile `id` to the node at `addr`, offering the ocpp1.6 subprotocol.
#[allow(dead_code)]
pub async fn connect(addr: SocketAddr, id: &str) -> Ws {
    let mut request = format!("ws://{addr}/ocpp/{id}")
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}
