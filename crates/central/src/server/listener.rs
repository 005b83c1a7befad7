//! The listening socket: SO_REUSEADDR (a restart binds at once), and SO_REUSEPORT with
//! `--reuse-port`, so that several nodes on one host listen on one port and the kernel spreads
//! the connections among them.

use std::io::ErrorKind;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use crate::StartError;

/// Connections the kernel keeps waiting for an accept (capped by `net.core.somaxconn`).
const BACKLOG: u32 = 1024;

/// Binds and listens at `addr`.
pub(super) fn bind(addr: SocketAddr, reuse_port: bool) -> Result<TcpListener, StartError> {
    let io = |e: std::io::Error| StartError::Io(addr.to_string(), e);
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io)?;
    socket.set_reuseaddr(true).map_err(io)?;
    if reuse_port {
        socket.set_reuseport(true).map_err(io)?;
    }
    match socket.bind(addr) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AddrInUse => {
            return Err(StartError::Options(format!(
                "{addr} is in use by another process; nodes on one host share a port only when \
                 every one of them starts with --reuse-port"
            )))
        }
        Err(e) => return Err(io(e)),
    }
    socket.listen(BACKLOG).map_err(io)
}
