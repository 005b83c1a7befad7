//! The async shell around the core: the websocket, the state file and the clocks. It carries
//! out the core's outputs in order (a `Persist` is on disk before anything after it is sent)
//! and feeds it connections, frames and ticks.

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use transport::client::{connect, ClientConfig};
use transport::{Message, TransportError, WsError, WsStream};

use crate::config::{Configuration, Factory};
use crate::store::{StateStore, StoreError};
use crate::{ChargePoint, Identity, Input, Options, Output, Target};

/// Everything a pile process needs.
pub struct PileSettings {
    pub state_dir: PathBuf,
    pub factory: Factory,
    pub identity: Identity,
    pub options: Options,
    /// TLS for `wss://` (the CA to trust and the TLS versions of the model).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Fixed addresses for host names (see [`ClientConfig::resolve`]).
    pub resolve: Vec<(String, u16, std::net::SocketAddr)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Sink = SplitSink<WsStream, Message>;
type Stream = SplitStream<WsStream>;

async fn next_message(stream: &mut Option<Stream>) -> Option<Result<Message, WsError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn connected(
    task: &mut Option<JoinHandle<Result<WsStream, TransportError>>>,
) -> Result<WsStream, String> {
    match task {
        Some(t) => match t.await {
            Ok(Ok(ws)) => Ok(ws),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs the pile until `shutdown` completes or its state cannot be saved.
pub async fn run(
    settings: PileSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShellError> {
    let store = StateStore::open(&settings.state_dir)?;
    let start = Instant::now();
    // A core from the durable state: at start, and again after a Reset.
    let boot_core = |now: Duration| -> Result<(ChargePoint, Vec<Output>), ShellError> {
        let durable = store.load()?.unwrap_or_default();
        let config = Configuration::restore(settings.factory.clone(), &durable.config);
        let mut cp = ChargePoint::new(
            config,
            settings.identity.clone(),
            settings.options.clone(),
            durable,
            now,
            chrono::Utc::now(),
        );
        let first = cp.handle(Input::Tick, now);
        Ok((cp, first))
    };
    let (mut cp, first) = boot_core(Duration::ZERO)?;
    let mut todo: VecDeque<Output> = first.into();
    let mut sink: Option<Sink> = None;
    let mut stream: Option<Stream> = None;
    let mut connecting: Option<JoinHandle<Result<WsStream, TransportError>>> = None;
    // WebSocketPingInterval: a ping every interval; no pong within the next interval (at least
    // 10 s) closes the dead link.
    let ping_interval = |cp: &ChargePoint| {
        Duration::from_secs(cp.config().int("WebSocketPingInterval").max(0) as u64)
    };
    let mut next_ping: Option<Instant> = None;
    let mut pong_deadline: Option<Instant> = None;
    let mut scheduled_with = Duration::ZERO;
    tokio::pin!(shutdown);
    loop {
        while let Some(output) = todo.pop_front() {
            match output {
                Output::Persist(state) => store.save(&state)?,
                Output::Send(frame) => {
                    let Some(s) = sink.as_mut() else { continue };
                    tracing::debug!(frame, "send");
                    if let Err(e) = s.send(Message::text(frame)).await {
                        tracing::warn!("send failed: {e}");
                        (sink, stream) = (None, None);
                        todo.extend(cp.handle(Input::Disconnected, start.elapsed()));
                    }
                }
                Output::Restart { hard } => {
                    tracing::info!(hard, "reset: restarting");
                    if let Some(mut s) = sink.take() {
                        let _ = s.close().await;
                    }
                    stream = None;
                    if let Some(old) = connecting.take() {
                        old.abort();
                    }
                    let (fresh, first) = boot_core(start.elapsed())?;
                    cp = fresh;
                    todo.clear();
                    todo.extend(first);
                }
                Output::Connect(target) => {
                    (sink, stream) = (None, None);
                    if let Some(old) = connecting.take() {
                        old.abort();
                    }
                    tracing::info!(url = target.url, "connecting");
                    let mut client = client_config(&target, settings.tls.clone());
                    client.resolve = settings.resolve.clone();
                    connecting = Some(tokio::spawn(async move { connect(&client).await }));
                }
            }
        }
        let interval = ping_interval(&cp);
        if sink.is_none() || interval.is_zero() {
            (next_ping, pong_deadline) = (None, None);
        } else if pong_deadline.is_none() && (next_ping.is_none() || scheduled_with != interval) {
            next_ping = Some(Instant::now() + interval);
            scheduled_with = interval;
        }
        let deadline = cp.next_deadline().map(|d| start + d);
        let input_now;
        let outputs = tokio::select! {
            message = next_message(&mut stream) => {
                input_now = start.elapsed();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        tracing::debug!(frame = text.as_str(), "received");
                        cp.handle(Input::Frame(text.as_str()), input_now)
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        tracing::warn!("connection lost");
                        (sink, stream) = (None, None);
                        cp.handle(Input::Disconnected, input_now)
                    }
                    Some(Ok(Message::Pong(_))) => {
                        pong_deadline = None;
                        Vec::new()
                    }
                    Some(Ok(_)) => Vec::new(),
                }
            }
            result = connected(&mut connecting) => {
                connecting = None;
                input_now = start.elapsed();
                match result {
                    Ok(ws) => {
                        tracing::info!("connected");
                        let (s, r) = ws.split();
                        (sink, stream) = (Some(s), Some(r));
                        cp.handle(Input::Connected, input_now)
                    }
                    Err(e) => {
                        tracing::warn!("connection failed: {e}");
                        cp.handle(Input::Disconnected, input_now)
                    }
                }
            }
            _ = sleep_until(deadline) => cp.handle(Input::Tick, start.elapsed()),
            _ = sleep_until(next_ping) => {
                next_ping = None;
                let interval = ping_interval(&cp);
                match sink.as_mut() {
                    Some(s) if !interval.is_zero() => {
                        pong_deadline = Some(Instant::now() + interval.max(Duration::from_secs(10)));
                        if s.send(Message::Ping(Default::default())).await.is_ok() {
                            Vec::new()
                        } else {
                            (sink, stream) = (None, None);
                            cp.handle(Input::Disconnected, start.elapsed())
                        }
                    }
                    _ => Vec::new(),
                }
            }
            _ = sleep_until(pong_deadline) => {
                tracing::warn!("no pong: closing a dead link");
                (sink, stream) = (None, None);
                cp.handle(Input::Disconnected, start.elapsed())
            }
            _ = &mut shutdown => {
                if let Some(mut s) = sink {
                    let _ = s.close().await;
                }
                return Ok(());
            }
        };
        todo.extend(outputs);
    }
}

fn client_config(target: &Target, tls: Option<Arc<rustls::ClientConfig>>) -> ClientConfig {
    let mut config = ClientConfig::new(target.url.clone());
    config.basic = target.basic.clone().map(|(u, p)| (u, p.into_bytes()));
    config.tls = tls;
    config
}
