//! The async RPC runtime: one task per connection drives a [`ocpp::rpc::Endpoint`] over a
//! websocket, with ping/pong, write timeouts and the message size limit.
//!
//! Incoming CALLs are handed to the [`Handler`] one at a time, in arrival order, so a
//! GetConfiguration after a ChangeConfiguration always sees the change. Our own CALLs go out one
//! at a time (OCPP-J 4.1.1); [`RpcHandle::call`] waits for the answer.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ocpp::rpc::{CallFailure, Endpoint, Inbound, Ticket};
use ocpp::{encode, Action, CallError, Decoded, OcppRequest, Policy, Request, Response};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::WsStream;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Send a ping this often (`WebSocketPingInterval`; `None` or zero: no pings).
    pub ping_interval: Option<Duration>,
    /// Close the connection when nothing (no pong, no frame at all) arrives within this time
    /// of a ping.
    pub pong_timeout: Duration,
    /// Give up on a write that does not complete within this time.
    pub write_timeout: Duration,
    /// How long to wait for the answer to one of our CALLs.
    pub call_timeout: Duration,
    /// The largest websocket message accepted; a larger one closes the connection (1009).
    pub max_message_size: usize,
    /// How incoming payloads are decoded.
    pub policy: Policy,
    /// Prefix of our message ids, to keep them unique across connections.
    pub id_prefix: String,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            ping_interval: None,
            pong_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(30),
            max_message_size: crate::DEFAULT_MAX_MESSAGE_SIZE,
            policy: Policy::Strict,
            id_prefix: String::new(),
        }
    }
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response, CallError>> + Send>>;

/// Answers incoming CALLs. Return `Err(CallError::not_supported(..))` for actions not handled.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, request: Decoded<Request>) -> HandlerFuture;
}

impl<F> Handler for F
where
    F: Fn(Decoded<Request>) -> HandlerFuture + Send + Sync + 'static,
{
    fn handle(&self, request: Decoded<Request>) -> HandlerFuture {
        self(request)
    }
}

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

/// Sees every text frame of a connection as it goes in or out (the central system's message
/// log). Called on the connection's task: it must not block.
pub trait FrameTap: Send + Sync + 'static {
    fn frame(&self, direction: Direction, text: &str);
}

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// We closed it ([`RpcHandle::close`] or every handle dropped).
    Local,
    /// The peer sent a close frame or ended the stream.
    Remote(String),
    /// Nothing arrived, not even a pong, within the pong timeout of a ping.
    PongTimeout,
    /// A message exceeded the size limit.
    MessageTooBig,
    /// A write did not complete in time.
    WriteTimeout,
    /// A websocket or I/O error.
    Error(String),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed by us"),
            CloseReason::Remote(why) if why.is_empty() => f.write_str("closed by the peer"),
            CloseReason::Remote(why) => write!(f, "closed by the peer ({why})"),
            CloseReason::PongTimeout => f.write_str("no answer to a ping in time: a dead link"),
            CloseReason::MessageTooBig => f.write_str("a message over the size limit"),
            CloseReason::WriteTimeout => f.write_str("a write did not complete in time"),
            CloseReason::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// Why [`RpcHandle::call`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error(transparent)]
    Call(#[from] CallFailure),
    #[error("the connection is closed")]
    Closed,
    #[error("the answer is of another action than {0}")]
    WrongResponse(Action),
}

enum Command {
    Call {
        action: Action,
        payload: String,
        reply: oneshot::Sender<Result<Decoded<Response>, CallFailure>>,
    },
    SetPingInterval(Option<Duration>),
}

/// Sends CALLs on a connection and watches it; cheap to clone.
#[derive(Clone)]
pub struct RpcHandle {
    commands: mpsc::UnboundedSender<Command>,
    /// Closing is heard even while an incoming CALL is being handled.
    shutdown: mpsc::UnboundedSender<()>,
    closed: watch::Receiver<Option<CloseReason>>,
}

impl RpcHandle {
    /// Sends a CALL and waits for its answer.
    pub async fn call<R: OcppRequest>(
        &self,
        request: &R,
    ) -> Result<Decoded<R::Response>, RpcError> {
        let d = self.call_raw(R::ACTION, encode(request)).await?;
        let deviations = d.deviations;
        R::Response::try_from(d.value)
            .map(|value| Decoded { value, deviations })
            .map_err(|_| RpcError::WrongResponse(R::ACTION))
    }

    /// Sends a CALL whose payload is already encoded.
    pub async fn call_raw(
        &self,
        action: Action,
        payload: String,
    ) -> Result<Decoded<Response>, RpcError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Call {
                action,
                payload,
                reply,
            })
            .map_err(|_| RpcError::Closed)?;
        match rx.await {
            Ok(result) => result.map_err(RpcError::from),
            Err(_) => Err(RpcError::Closed),
        }
    }

    /// Changes the ping interval (`None` or zero: no pings).
    pub fn set_ping_interval(&self, interval: Option<Duration>) {
        let _ = self.commands.send(Command::SetPingInterval(interval));
    }

    /// Closes the connection (normal closure).
    pub fn close(&self) {
        let _ = self.shutdown.send(());
    }

    pub fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    /// Waits until the connection has ended and says why.
    pub async fn closed(&self) -> CloseReason {
        let mut rx = self.closed.clone();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return rx
                    .borrow()
                    .clone()
                    .unwrap_or(CloseReason::Error("runtime ended".into()));
            }
        }
    }
}

/// Starts the runtime of one connection.
pub fn spawn_rpc(ws: WsStream, config: LinkConfig, handler: Arc<dyn Handler>) -> RpcHandle {
    spawn_rpc_tapped(ws, config, handler, None)
}

/// Starts the runtime of one connection, showing every frame to `tap`.
pub fn spawn_rpc_tapped(
    ws: WsStream,
    config: LinkConfig,
    handler: Arc<dyn Handler>,
    tap: Option<Arc<dyn FrameTap>>,
) -> RpcHandle {
    let (commands, rx) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = mpsc::unbounded_channel();
    let (closed_tx, closed) = watch::channel(None);
    tokio::spawn(async move {
        let mut runtime = Runtime::new(config, handler);
        runtime.tap = tap;
        let reason = runtime.run(ws, rx, shutdown_rx).await;
        tracing::debug!(?reason, "connection ended");
        let _ = closed_tx.send(Some(reason));
    });
    RpcHandle {
        commands,
        shutdown,
        closed,
    }
}

async fn maybe<F: Future + Unpin>(f: Option<&mut F>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

struct Runtime {
    config: LinkConfig,
    handler: Arc<dyn Handler>,
    endpoint: Endpoint,
    start: Instant,
    waiting: HashMap<Ticket, oneshot::Sender<Result<Decoded<Response>, CallFailure>>>,
    incoming: VecDeque<(String, Decoded<Request>)>,
    current: Option<(String, HandlerFuture)>,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    tap: Option<Arc<dyn FrameTap>>,
}

impl Runtime {
    fn new(config: LinkConfig, handler: Arc<dyn Handler>) -> Self {
        let endpoint = Endpoint::new(config.policy, config.call_timeout, config.id_prefix.clone());
        let start = Instant::now();
        let next_ping = config
            .ping_interval
            .filter(|d| !d.is_zero())
            .map(|d| start + d);
        Runtime {
            config,
            handler,
            endpoint,
            start,
            waiting: HashMap::new(),
            incoming: VecDeque::new(),
            current: None,
            next_ping,
            pong_deadline: None,
            tap: None,
        }
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn deliver(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Call { id, request } => {
                for d in &request.deviations {
                    tracing::info!(id = %id, action = %request.value.action(), deviation = %d, "tolerated deviation");
                }
                self.incoming.push_back((id, request));
            }
            Inbound::Reply {
                ticket,
                action,
                outcome,
            } => {
                if let Err(e) = &outcome {
                    tracing::warn!(%action, error = %e, "call failed");
                }
                if let Some(waiter) = self.waiting.remove(&ticket) {
                    let _ = waiter.send(outcome);
                }
            }
            Inbound::Dropped(why) => tracing::warn!("{why}"),
        }
    }

    async fn run(
        mut self,
        ws: WsStream,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: mpsc::UnboundedReceiver<()>,
    ) -> CloseReason {
        let (mut sink, mut stream) = ws.split();
        let reason = loop {
            // Write whatever the endpoint has to say.
            let mut write_failed = None;
            while let Some(frame) = self.endpoint.poll_transmit() {
                if let Some(tap) = &self.tap {
                    tap.frame(Direction::Out, &frame);
                }
                match tokio::time::timeout(
                    self.config.write_timeout,
                    sink.send(Message::text(frame)),
                )
                .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        write_failed = Some(CloseReason::Error(e.to_string()));
                        break;
                    }
                    Err(_) => {
                        write_failed = Some(CloseReason::WriteTimeout);
                        break;
                    }
                }
            }
            if let Some(reason) = write_failed {
                break reason;
            }
            if self.current.is_none() {
                if let Some((id, request)) = self.incoming.pop_front() {
                    let fut = self.handler.handle(request);
                    self.current = Some((id, fut));
                }
            }
            let rpc_deadline = self.endpoint.next_deadline().map(|d| self.start + d);
            tokio::select! {
                message = stream.next() => {
                    // Whatever the peer sends shows the link alive, as a pong does.
                    if matches!(message, Some(Ok(_))) {
                        self.pong_deadline = None;
                    }
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            if let Some(tap) = &self.tap {
                                tap.frame(Direction::In, text.as_str());
                            }
                            let inbound = self.endpoint.handle_frame(text.as_str(), self.now());
                            self.deliver(inbound);
                        }
                        Some(Ok(Message::Binary(_))) => tracing::warn!("binary websocket message ignored (OCPP-J uses text)"),
                        Some(Ok(Message::Pong(_))) | Some(Ok(Message::Ping(_))) | Some(Ok(Message::Frame(_))) => {}
                        Some(Ok(Message::Close(frame))) => {
                            break CloseReason::Remote(frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default());
                        }
                        Some(Err(WsError::Capacity(e))) => {
                            tracing::warn!("closing: {e}");
                            let close = CloseFrame { code: CloseCode::Size, reason: "message too big".into() };
                            let _ = tokio::time::timeout(self.config.write_timeout, sink.send(Message::Close(Some(close)))).await;
                            break CloseReason::MessageTooBig;
                        }
                        Some(Err(e)) => break CloseReason::Error(e.to_string()),
                        None => break CloseReason::Remote("stream ended".into()),
                    }
                }
                // Our CALLs wait while an incoming CALL is being handled, so that a CALL the
                // handler asks for goes out after its answer.
                command = commands.recv(), if self.current.is_none() => match command {
                    Some(Command::Call { action, payload, reply }) => {
                        let ticket = self.endpoint.call_raw(action, payload, self.now());
                        self.waiting.insert(ticket, reply);
                    }
                    Some(Command::SetPingInterval(interval)) => {
                        self.config.ping_interval = interval;
                        self.next_ping = interval.filter(|d| !d.is_zero()).map(|d| Instant::now() + d);
                    }
                    None => {
                        let _ = tokio::time::timeout(self.config.write_timeout, sink.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })))).await;
                        break CloseReason::Local;
                    }
                },
                _ = shutdown.recv() => {
                    let _ = tokio::time::timeout(self.config.write_timeout, sink.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() })))).await;
                    break CloseReason::Local;
                }
                result = maybe(self.current.as_mut().map(|(_, f)| f)) => {
                    let (id, _) = self.current.take().expect("a handler was running");
                    match result {
                        Ok(response) => self.endpoint.respond(&id, &response),
                        Err(error) => self.endpoint.respond_error(&id, &error),
                    }
                }
                _ = sleep_until(rpc_deadline) => {
                    if let Some(inbound) = self.endpoint.poll_timeout(self.now()) {
                        self.deliver(inbound);
                    }
                }
                _ = sleep_until(self.next_ping.filter(|_| self.pong_deadline.is_none())) => {
                    let now = Instant::now();
                    self.next_ping = self.config.ping_interval.map(|d| now + d);
                    self.pong_deadline = Some(now + self.config.pong_timeout);
                    match tokio::time::timeout(self.config.write_timeout, sink.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => break CloseReason::Error(e.to_string()),
                        Err(_) => break CloseReason::WriteTimeout,
                    }
                }
                _ = sleep_until(self.pong_deadline) => {
                    tracing::warn!("no pong within {:?}: closing a dead link", self.config.pong_timeout);
                    break CloseReason::PongTimeout;
                }
            }
        };
        for (ticket, _) in self.endpoint.disconnect() {
            if let Some(waiter) = self.waiting.remove(&ticket) {
                let _ = waiter.send(Err(CallFailure::Disconnected));
            }
        }
        reason
    }
}
