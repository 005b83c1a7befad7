//! The live connections, one per identity, and the delivery of commands through them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ocpp::rpc::CallFailure;
use ocpp::{Action, CallError, Decoded, Response};
use tokio::sync::watch;
use transport::{RpcError, RpcHandle};

/// One pile's live connection.
#[derive(Clone)]
pub struct Session {
    pub handle: RpcHandle,
    /// Tells this connection from a later one of the same identity.
    pub connection: u64,
    pub remote: SocketAddr,
}

/// Why a command got no answer from the pile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    #[error("the pile is not connected")]
    NotConnected,
    #[error("the pile answered with a CALLERROR: {0}")]
    CallError(CallError),
    #[error("the pile did not answer in time")]
    Timeout,
    #[error("the connection closed before the pile answered")]
    Disconnected,
    #[error("the pile's answer does not decode: {0}")]
    BadResponse(String),
    /// In a cluster: the NATS server did not take the request to the pile's node.
    #[error("the pile's node cannot be reached through NATS: {0}")]
    Unavailable(String),
}

/// Sends a CALL to a pile and waits for its answer: the pile's connection may live on this
/// node or on another one (see `cluster::delivery`).
#[async_trait]
pub trait Delivery: Send + Sync {
    async fn is_connected(&self, pile: &str) -> bool;
    async fn call(
        &self,
        pile: &str,
        action: Action,
        payload: String,
    ) -> Result<Decoded<Response>, DeliveryError>;
}

#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Session>>,
    next: AtomicU64,
    /// How many connections' tasks still run (a task ends once its last write is handed to
    /// the writer, after its connection is forgotten).
    tasks: Arc<watch::Sender<usize>>,
}

/// A connection's task counted as running until this is dropped.
pub struct ConnectionTask {
    tasks: Arc<watch::Sender<usize>>,
}

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.tasks.send_modify(|n| *n -= 1);
    }
}

impl Sessions {
    /// Makes `handle` the identity's connection; returns its number and the one it replaces.
    pub fn insert(
        &self,
        identity: &str,
        handle: RpcHandle,
        remote: SocketAddr,
    ) -> (u64, Option<Session>) {
        let connection = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let old = self.live.lock().expect("sessions lock").insert(
            identity.to_owned(),
            Session {
                handle,
                connection,
                remote,
            },
        );
        (connection, old)
    }

    /// Forgets a connection that ended, unless a newer one replaced it already.
    pub fn remove(&self, identity: &str, connection: u64) -> bool {
        let mut live = self.live.lock().expect("sessions lock");
        if live
            .get(identity)
            .is_some_and(|s| s.connection == connection)
        {
            live.remove(identity);
            true
        } else {
            false
        }
    }

    pub fn get(&self, identity: &str) -> Option<Session> {
        self.live
            .lock()
            .expect("sessions lock")
            .get(identity)
            .cloned()
    }

    /// Whether the identity has a live connection on this node.
    pub fn is_live(&self, identity: &str) -> bool {
        self.get(identity).is_some_and(|s| !s.handle.is_closed())
    }

    /// The identities connected here, each with its connection's number.
    pub fn connections(&self) -> Vec<(String, u64)> {
        self.live
            .lock()
            .expect("sessions lock")
            .iter()
            .map(|(id, s)| (id.clone(), s.connection))
            .collect()
    }

    pub fn count(&self) -> usize {
        self.live.lock().expect("sessions lock").len()
    }

    /// Closes the identity's live connection without forgetting it (its task does that when
    /// it ends).
    pub fn drop_link(&self, identity: &str) {
        if let Some(s) = self.get(identity) {
            s.handle.close();
        }
    }

    /// Closes the identity's connection, if any.
    pub fn close(&self, identity: &str) {
        if let Some(s) = self.live.lock().expect("sessions lock").remove(identity) {
            s.handle.close();
        }
    }

    /// The identities connected now, in order.
    pub fn identities(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .live
            .lock()
            .expect("sessions lock")
            .keys()
            .cloned()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Counts a connection's task as running until the guard is dropped.
    pub fn task_started(&self) -> ConnectionTask {
        self.tasks.send_modify(|n| *n += 1);
        ConnectionTask {
            tasks: self.tasks.clone(),
        }
    }

    /// Returns once no connection's task runs.
    pub async fn until_no_task(&self) {
        let mut tasks = self.tasks.subscribe();
        // The sender lives as long as `self`: the wait ends only when the count is zero.
        let _ = tasks.wait_for(|n| *n == 0).await;
    }
}

#[async_trait]
impl Delivery for Sessions {
    async fn is_connected(&self, pile: &str) -> bool {
        self.is_live(pile)
    }

    async fn call(
        &self,
        pile: &str,
        action: Action,
        payload: String,
    ) -> Result<Decoded<Response>, DeliveryError> {
        let session = self.get(pile).ok_or(DeliveryError::NotConnected)?;
        match session.handle.call_raw(action, payload).await {
            Ok(answer) => Ok(answer),
            Err(RpcError::Call(CallFailure::CallError(e))) => Err(DeliveryError::CallError(e)),
            Err(RpcError::Call(CallFailure::Timeout)) => Err(DeliveryError::Timeout),
            Err(RpcError::Call(CallFailure::Disconnected)) | Err(RpcError::Closed) => {
                Err(DeliveryError::Disconnected)
            }
            Err(RpcError::Call(CallFailure::BadResponse(e))) => {
                Err(DeliveryError::BadResponse(e.to_string()))
            }
            Err(e @ RpcError::WrongResponse(_)) => Err(DeliveryError::BadResponse(e.to_string())),
        }
    }
}
