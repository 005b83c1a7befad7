//! OCPP-J over websockets: client and server on tokio-tungstenite, the `ocpp1.6` subprotocol,
//! charge point identities, HTTP Basic authentication (Security Profile 1), TLS through rustls
//! with the ring provider (Profile 2, and client certificates for Profile 3), ping/pong, a
//! message size limit, and the async RPC runtime shared by the pile and the central system.

pub mod auth;
pub mod client;
mod error;
mod io;
pub mod rpc;
pub mod server;
pub mod tls;

pub use error::TransportError;
pub use io::{BoxedIo, WsStream};
/// The identity in the URL path (defined with the OCPP-J messages).
pub use ocpp::identity;
pub use rpc::{
    spawn_rpc, spawn_rpc_tapped, CloseReason, Direction, FrameTap, Handler, HandlerFuture,
    LinkConfig, RpcError, RpcHandle,
};
pub use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The websocket subprotocol of OCPP-J 1.6.
pub const SUBPROTOCOL: &str = "ocpp1.6";
/// The default limit for one websocket message.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// The websocket settings of every connection, pile's or central's: buffers sized for OCPP
/// frames (tungstenite's defaults, 128 KiB to read and 128 KiB to write, are far too much for
/// thousands of connections), each frame written at once, frames and messages at most
/// `max_message_size`.
pub fn ws_config(
    max_message_size: usize,
) -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
        .read_buffer_size(1024)
        .write_buffer_size(0)
}
