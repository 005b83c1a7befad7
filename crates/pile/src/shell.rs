//! The async shell around the core: the websocket, the state file, the hardware, the clocks
//! and the local control channel. It carries out the core's outputs in order (a `Persist` is
//! on disk before anything after it is sent) and feeds it connections, frames, hardware
//! changes and ticks.

use pile_core::config::keys;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use transport::client::{connect, ClientConfig};
use transport::{Message, TransportError, WsError, WsStream};

use crate::config::{Configuration, Factory, KEYS};
use crate::faults::Fault;
use crate::hardware::{Hardware, HardwareEvent, MeterReading, Pilot};
use crate::insight::Insight;
use crate::link::{LinkWriter, WriteFailed};
use crate::logbook::LogBook;
use crate::store::{PileStore, StateStore, StoreError};
use crate::telemetry::{CallTimer, Share, Telemetry};
use crate::transfer::{download, image_version, upload};
use crate::{
    ChargePoint, DiagnosticsEvent, FirmwareEvent, Identity, Input, NetState, Options, Output,
    Target,
};

/// How long a failed restart (Reset) waits before it is tried again.
pub const RESET_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Everything a pile process needs.
pub struct PileSettings {
    pub state_dir: PathBuf,
    /// Where a downloaded firmware image is kept; `None`: it is streamed through and checked
    /// (its length) without being kept, as a fleet's piles do.
    pub firmware_file: Option<PathBuf>,
    pub factory: Factory,
    pub identity: Identity,
    pub options: Options,
    /// TLS for `wss://` (the CA to trust and the TLS versions of the model).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Fixed addresses for host names (see [`ClientConfig::resolve`]).
    pub resolve: Vec<(String, u16, std::net::SocketAddr)>,
    /// A write to the central system that takes longer fails the connection (the pile then
    /// reconnects); meanwhile the pile goes on.
    pub write_timeout: Duration,
    /// The bytes of log the pile keeps for GetDiagnostics ([`crate::logbook::DEFAULT_BUDGET`]
    /// for one pile; a fleet keeps less per pile).
    pub log_budget: usize,
    /// The local address to connect from (`None`: the system's choice).
    pub bind: Option<std::net::IpAddr>,
    /// Counters shared with the piles beside this one (a fleet's summary).
    pub telemetry: Option<Arc<Telemetry>>,
}

/// The default write timeout.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

mod control;
use control::Command;
pub use control::{
    control_channel, ConnectionState, ConnectorState, Control, FirmwareState, PileHandle,
    PileState, TransactionState,
};

type Stream = SplitStream<WsStream>;

/// This pile's share of the shared counters; taken out when the pile stops, however it stops.
struct Counted {
    telemetry: Option<Arc<Telemetry>>,
    share: Share,
    calls: CallTimer,
}

impl Counted {
    fn update(&mut self, connected: bool, accepted: bool, charging: i64) {
        if let Some(t) = &self.telemetry {
            self.share.update(t, connected, accepted, charging);
        }
    }

    fn sent(&mut self, frame: &str) {
        if self.telemetry.is_some() {
            self.calls.sent(frame);
        }
    }

    fn received(&mut self, frame: &str) {
        if let Some(t) = &self.telemetry {
            self.calls.received(frame, t);
        }
    }

    fn count(&self, counter: impl Fn(&Telemetry) -> &std::sync::atomic::AtomicU64) {
        if let Some(t) = &self.telemetry {
            counter(t).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(t) = &self.telemetry {
            self.share.leave(t);
        }
    }
}

/// What woke the pile's loop.
enum Wake {
    Hardware(Option<HardwareEvent>),
    Message(Option<Result<Message, WsError>>),
    Connected(Result<WsStream, String>),
    Command(Option<Command>),
    Firmware(FirmwareEvent),
    Diagnostics(DiagnosticsEvent),
    Tick,
    Ping,
    WriteFailed(WriteFailed),
    /// A link's writer ended without a failure to report.
    Nothing,
    PongMissed,
}

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

/// The next event of a transfer under way; pending while there is none.
async fn next_of<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Why the link's writer failed (`None`: it ended without failing); pending while there is
/// no link.
async fn failure_of(rx: &mut Option<oneshot::Receiver<WriteFailed>>) -> Option<WriteFailed> {
    match rx {
        Some(rx) => rx.await.ok(),
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// What the hardware last reported, to feed a core again after a restart.
struct HardwareMirror {
    plugged: BTreeSet<u32>,
    pilots: BTreeMap<u32, Pilot>,
    cables: BTreeMap<u32, Option<f64>>,
    faults: BTreeSet<Fault>,
    network: NetState,
    online: bool,
    meters: BTreeMap<u32, MeterReading>,
}

impl HardwareMirror {
    fn inputs(&self) -> Vec<HardwareEvent> {
        let mut events = vec![
            HardwareEvent::Network {
                state: self.network.clone(),
                online: self.online,
            },
            HardwareEvent::Faults(self.faults.clone()),
        ];
        events.extend(self.meters.iter().map(|(c, m)| HardwareEvent::Meter {
            connector: *c,
            reading: m.clone(),
        }));
        for c in &self.plugged {
            if let Some(amps) = self.cables.get(c) {
                events.push(HardwareEvent::Cable {
                    connector: *c,
                    amps: *amps,
                });
            }
            events.push(HardwareEvent::Plug {
                connector: *c,
                plugged: true,
            });
        }
        events.extend(self.pilots.iter().map(|(c, p)| HardwareEvent::Pilot {
            connector: *c,
            state: *p,
        }));
        events
    }

    fn record(&mut self, event: &HardwareEvent) {
        match event {
            HardwareEvent::Plug {
                connector,
                plugged: true,
            } => {
                self.plugged.insert(*connector);
            }
            HardwareEvent::Plug {
                connector,
                plugged: false,
            } => {
                self.plugged.remove(connector);
                self.cables.remove(connector);
            }
            HardwareEvent::Pilot { connector, state } => {
                self.pilots.insert(*connector, *state);
            }
            HardwareEvent::Cable { connector, amps } => {
                self.cables.insert(*connector, *amps);
            }
            HardwareEvent::Card { .. } => {}
            HardwareEvent::Faults(f) => self.faults = f.clone(),
            HardwareEvent::Network { state, online } => {
                self.network = state.clone();
                self.online = *online;
            }
            HardwareEvent::Meter { connector, reading } => {
                self.meters.insert(*connector, reading.clone());
            }
        }
    }
}

fn feed(cp: &mut ChargePoint, event: &HardwareEvent, now: Duration) -> Vec<Output> {
    match event {
        HardwareEvent::Plug { connector, plugged } => cp.handle(
            Input::Plug {
                connector: *connector,
                plugged: *plugged,
            },
            now,
        ),
        HardwareEvent::Faults(faults) => cp.handle(Input::Faults(faults), now),
        HardwareEvent::Network { state, .. } => cp.handle(Input::Network(state), now),
        HardwareEvent::Meter { connector, reading } => cp.handle(
            Input::Meter {
                connector: *connector,
                reading,
            },
            now,
        ),
        HardwareEvent::Pilot { connector, state } => cp.handle(
            Input::Pilot {
                connector: *connector,
                state: *state,
            },
            now,
        ),
        HardwareEvent::Cable { connector, amps } => cp.handle(
            Input::Cable {
                connector: *connector,
                amps: *amps,
            },
            now,
        ),
        HardwareEvent::Card { connector, id_tag } => cp.handle(
            Input::Card {
                connector: *connector,
                id_tag,
            },
            now,
        ),
    }
}

fn snapshot(cp: &ChargePoint, settings: &PileSettings, connected: bool, online: bool) -> PileState {
    let config = cp.config();
    let network = cp.network();
    PileState {
        serial_number: settings.factory.serial_number.clone(),
        identity: config.identity().to_owned(),
        connection: ConnectionState {
            url: cp.target().url.clone(),
            connected,
            accepted: cp.is_accepted(),
            online,
        },
        connectors: (1..=cp.connector_count())
            .map(|id| ConnectorState {
                id,
                status: cp.status(id).to_string(),
                plugged: cp.is_plugged(id),
                pilot: cp.pilot(id).unwrap_or(Pilot::A),
                offered_a: cp.offered(id),
                relay_closed: cp.relay_closed(id),
                energy_wh: cp.meter_register(id),
                transaction: cp.transaction(id).map(|t| TransactionState {
                    id_tag: t.id_tag.clone(),
                    transaction_id: cp.transaction_id(id),
                    meter_start: t.meter_start,
                    started: t.started.to_string(),
                }),
            })
            .collect(),
        faults: cp.faults().iter().map(|f| f.name()).collect(),
        outbox: cp.outbox_len(),
        network: network.clone(),
        configuration: KEYS
            .iter()
            .map(|k| (k.name, cp.config_value(k.name)))
            .collect(),
        firmware: FirmwareState {
            version: cp.firmware_version().to_owned(),
            status: cp.firmware_status().to_string(),
            percent: cp.firmware_percent(),
        },
    }
}

/// Runs the pile, its state in `settings.state_dir`, until `shutdown` completes or its state
/// cannot be saved.
pub async fn run(
    settings: PileSettings,
    hardware: Box<dyn Hardware>,
    control: Control,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShellError> {
    let store = StateStore::open(&settings.state_dir)?;
    run_with_store(settings, Box::new(store), hardware, control, shutdown).await
}

/// Runs the pile with its state in `store`.
pub async fn run_with_store(
    settings: PileSettings,
    mut store: Box<dyn PileStore>,
    mut hardware: Box<dyn Hardware>,
    control: Control,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShellError> {
    let start = Instant::now();
    let mut counted = Counted {
        telemetry: settings.telemetry.clone(),
        share: Share::default(),
        calls: CallTimer::default(),
    };
    let mut mirror = HardwareMirror {
        plugged: BTreeSet::new(),
        pilots: BTreeMap::new(),
        cables: BTreeMap::new(),
        faults: BTreeSet::new(),
        network: NetState::default(),
        online: true,
        meters: BTreeMap::new(),
    };
    // A core from the durable state, told what the hardware looks like: at start, and again
    // after a Reset.
    let boot_core = |store: &mut Box<dyn PileStore>,
                     now: Duration,
                     mirror: &HardwareMirror|
     -> Result<(ChargePoint, Vec<Output>), ShellError> {
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
        let mut first = Vec::new();
        for event in mirror.inputs() {
            first.extend(feed(&mut cp, &event, now));
        }
        first.extend(cp.handle(Input::Tick, now));
        Ok((cp, first))
    };
    let (mut cp, first) = boot_core(&mut store, Duration::ZERO, &mirror)?;
    let mut todo: VecDeque<Output> = first.into();
    // The connection: its writer (a task of its own) and its reading half.
    let mut sink: Option<LinkWriter> = None;
    let mut links: u64 = 0;
    // Why the current link's writer failed, if it does.
    let mut link_failed: Option<oneshot::Receiver<WriteFailed>> = None;
    let mut stream: Option<Stream> = None;
    let mut connecting: Option<JoinHandle<Result<WsStream, TransportError>>> = None;
    // WebSocketPingInterval: a ping every interval; no pong within the next interval (at least
    // 10 s) closes the dead link.
    let ping_interval = |cp: &ChargePoint| cp.config().seconds(keys::WEB_SOCKET_PING_INTERVAL);
    let mut next_ping: Option<Instant> = None;
    let mut pong_deadline: Option<Instant> = None;
    let mut scheduled_with = Duration::ZERO;
    let mut control_open = true;
    // Firmware downloads run beside the loop and report through this channel.
    // (Made when a transfer starts: an idle pile holds no channel.)
    let mut firmware_rx: Option<mpsc::UnboundedReceiver<FirmwareEvent>> = None;
    let mut downloading: Option<JoinHandle<()>> = None;
    let mut logbook = LogBook::with_budget(settings.log_budget);
    let mut diagnostics_rx: Option<mpsc::UnboundedReceiver<DiagnosticsEvent>> = None;
    let mut uploading: Option<JoinHandle<()>> = None;
    tokio::pin!(shutdown);
    loop {
        while let Some(output) = todo.pop_front() {
            match output {
                Output::Persist => store.save(cp.durable()).await?,
                Output::Log(line) => {
                    tracing::warn!("{line}");
                    logbook.record(cp.wall_time(start.elapsed()), "event", &line);
                }
                Output::Insight(target) => {
                    logbook.set_insight(target.and_then(|(host, port)| {
                        Insight::start(
                            &settings.factory.serial_number,
                            &host,
                            port,
                            settings.tls.clone(),
                        )
                    }));
                }
                Output::Upload(job) => {
                    if let Some(old) = uploading.take() {
                        old.abort();
                    }
                    let body = logbook.render(job.start, job.stop);
                    let (tx, rx) = mpsc::unbounded_channel();
                    diagnostics_rx = Some(rx);
                    let tls = settings.tls.clone();
                    uploading = Some(tokio::spawn(async move {
                        let event = match upload(&job.location, &job.file_name, body, tls).await {
                            Ok(()) => DiagnosticsEvent::Uploaded,
                            Err(e) => DiagnosticsEvent::Failed(e.to_string()),
                        };
                        let _ = tx.send(event);
                    }));
                }
                Output::Download { url } => {
                    if let Some(old) = downloading.take() {
                        old.abort();
                    }

                    tracing::info!(url, "firmware download");
                    let (tx, rx) = mpsc::unbounded_channel();
                    firmware_rx = Some(rx);
                    let dest = settings.firmware_file.clone();
                    let tls = settings.tls.clone();
                    downloading = Some(tokio::spawn(async move {
                        let progress = |p| {
                            let _ = tx.send(FirmwareEvent::Progress(p));
                        };
                        let event = match download(&url, dest.as_deref(), tls, progress).await {
                            Ok(size) => FirmwareEvent::Downloaded {
                                version: image_version(&url, size),
                            },
                            Err(e) => FirmwareEvent::Failed(e.to_string()),
                        };
                        let _ = tx.send(event);
                    }));
                }
                Output::Hardware(command) => {
                    tracing::debug!(?command, "hardware");
                    hardware.command(&command);
                }
                Output::Send(frame) => {
                    let Some(s) = sink.as_ref() else { continue };
                    tracing::debug!(frame, "send");
                    counted.count(|t| &t.frames_sent);
                    counted.sent(&frame);
                    logbook.record(cp.wall_time(start.elapsed()), "send", &frame);
                    s.send(frame);
                }
                Output::Connect(target) => {
                    (sink, stream) = (None, None);
                    if let Some(old) = connecting.take() {
                        old.abort();
                    }
                    if mirror.online {
                        tracing::info!(url = target.url, "connecting");
                        let mut client = client_config(&target, settings.tls.clone());
                        client.resolve = settings.resolve.clone();
                        client.bind = settings.bind;
                        connecting = Some(tokio::spawn(async move { connect(&client).await }));
                    } else {
                        // No network: the attempt fails at once, and the core backs off.
                        todo.extend(cp.handle(Input::Disconnected, start.elapsed()));
                    }
                }
                Output::Restart { hard } => {
                    tracing::info!(hard, "reset: restarting");
                    logbook.record(
                        cp.wall_time(start.elapsed()),
                        "event",
                        if hard { "hard restart" } else { "soft restart" },
                    );
                    if let Some(s) = sink.take() {
                        s.close().await;
                    }
                    stream = None;
                    if let Some(old) = connecting.take() {
                        old.abort();
                    }
                    if let Some(old) = downloading.take() {
                        old.abort();
                    }
                    // A restart that cannot reload the state is tried again, ResetRetries
                    // times, before the pile gives up.
                    let retries = cp.config().int(keys::RESET_RETRIES).max(0) as u32;
                    let mut attempt = 0;
                    let (fresh, first) = loop {
                        match boot_core(&mut store, start.elapsed(), &mirror) {
                            Ok(core) => break core,
                            Err(e) if attempt < retries => {
                                attempt += 1;
                                tracing::warn!("reset failed: {e}; retry {attempt} of {retries}");
                                tokio::time::sleep(RESET_RETRY_DELAY).await;
                            }
                            Err(e) => return Err(e),
                        }
                    };
                    cp = fresh;
                    todo.clear();
                    todo.extend(first);
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
        let charging = (1..=cp.connector_count())
            .filter(|c| cp.relay_closed(*c))
            .count() as i64;
        counted.update(sink.is_some(), cp.is_accepted(), charging);
        let deadline = cp.next_deadline().map(|d| start + d);
        // Hardware events first: what the control port did before asking something is always
        // seen before the question.
        let wake = tokio::select! {
            biased;
            event = hardware.next_event() => Wake::Hardware(event),
            message = next_message(&mut stream) => Wake::Message(message),
            result = connected(&mut connecting) => {
                connecting = None;
                Wake::Connected(result)
            }
            command = control.recv(), if control_open => Wake::Command(command),
            Some(event) = next_of(&mut firmware_rx) => Wake::Firmware(event),
            Some(event) = next_of(&mut diagnostics_rx) => Wake::Diagnostics(event),
            _ = sleep_until(deadline) => Wake::Tick,
            _ = sleep_until(next_ping) => Wake::Ping,
            failure = failure_of(&mut link_failed) => {
                link_failed = None;
                match failure {
                    Some(failure) => Wake::WriteFailed(failure),
                    None => Wake::Nothing,
                }
            }
            _ = sleep_until(pong_deadline) => Wake::PongMissed,
            _ = &mut shutdown => {
                if let Some(s) = sink {
                    s.close().await;
                }
                return Ok(());
            }
        };
        let now = start.elapsed();
        // The meters of the connectors that deliver energy are read now, before the core
        // takes what woke the pile: whatever it samples, stops or limits sees this instant.
        for connector in 1..=cp.connector_count() {
            if !cp.relay_closed(connector) {
                continue;
            }
            if let Some(reading) = hardware.read_meter(connector) {
                let event = HardwareEvent::Meter { connector, reading };
                mirror.record(&event);
                todo.extend(feed(&mut cp, &event, now));
            }
        }
        let outputs = match wake {
            Wake::Hardware(Some(event)) => {
                mirror.record(&event);
                let mut out = feed(&mut cp, &event, now);
                if !mirror.online && (sink.is_some() || connecting.is_some()) {
                    tracing::warn!("network down");
                    (sink, stream) = (None, None);
                    if let Some(t) = connecting.take() {
                        t.abort();
                    }
                    out.extend(cp.handle(Input::Disconnected, now));
                }
                out
            }
            Wake::Hardware(None) => {
                hardware = Box::new(crate::hardware::NoHardware);
                Vec::new()
            }
            Wake::Message(message) => match message {
                Some(Ok(Message::Text(text))) => {
                    tracing::debug!(frame = text.as_str(), "received");
                    counted.count(|t| &t.frames_received);
                    counted.received(text.as_str());
                    logbook.record(cp.wall_time(now), "receive", text.as_str());
                    cp.handle(Input::Frame(text.as_str()), now)
                }
                Some(Ok(Message::Pong(_))) => {
                    pong_deadline = None;
                    Vec::new()
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    tracing::warn!("connection lost");
                    counted.count(|t| &t.failures);
                    logbook.record(cp.wall_time(now), "event", "connection lost");
                    (sink, stream) = (None, None);
                    cp.handle(Input::Disconnected, now)
                }
                Some(Ok(_)) => Vec::new(),
            },
            Wake::Connected(Ok(ws)) => {
                tracing::info!("connected");
                counted.count(|t| &t.connections);
                counted.calls.forget();
                let line = format!("connected to {}", cp.target().url);
                logbook.record(cp.wall_time(now), "event", &line);
                let (s, r) = ws.split();
                links += 1;
                let (writer, failure) = LinkWriter::start(s, links, settings.write_timeout);
                link_failed = Some(failure);
                (sink, stream) = (Some(writer), Some(r));
                cp.handle(Input::Connected, now)
            }
            Wake::Connected(Err(e)) => {
                tracing::warn!("connection failed: {e}");
                counted.count(|t| &t.failures);
                cp.handle(Input::Disconnected, now)
            }
            Wake::Command(Some(Command::Provision { key, value, reply })) => {
                let (change, out) = cp.provision(&key, &value, now);
                // Carried out (and so persisted) before the reply.
                todo.extend(out);
                while let Some(o) = todo.pop_front() {
                    if o == Output::Persist {
                        store.save(cp.durable()).await?;
                    } else {
                        todo.push_front(o);
                        break;
                    }
                }
                let _ = reply.send(change.status);
                Vec::new()
            }
            Wake::Command(Some(Command::State { reply })) => {
                let _ = reply.send(snapshot(&cp, &settings, sink.is_some(), mirror.online));
                Vec::new()
            }
            Wake::Command(None) => {
                control_open = false;
                Vec::new()
            }
            Wake::Firmware(event) => cp.handle(Input::Firmware(&event), now),
            Wake::Diagnostics(event) => cp.handle(Input::Diagnostics(&event), now),
            Wake::Tick => cp.handle(Input::Tick, now),
            Wake::Ping => {
                next_ping = None;
                if let Some(s) = sink.as_ref().filter(|_| !interval.is_zero()) {
                    pong_deadline = Some(Instant::now() + interval.max(Duration::from_secs(10)));
                    s.ping();
                }
                Vec::new()
            }
            Wake::WriteFailed(failure) => {
                if sink.as_ref().is_some_and(|s| s.link == failure.link) {
                    tracing::warn!("{}: closing the connection", failure.why);
                    counted.count(|t| &t.failures);
                    logbook.record(cp.wall_time(now), "event", &failure.why);
                    (sink, stream) = (None, None);
                    cp.handle(Input::Disconnected, now)
                } else {
                    Vec::new()
                }
            }
            Wake::Nothing => Vec::new(),
            Wake::PongMissed => {
                tracing::warn!("no pong: closing a dead link");
                counted.count(|t| &t.failures);
                (sink, stream) = (None, None);
                cp.handle(Input::Disconnected, now)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_handle_learns_that_its_pile_stopped_instead_of_waiting() {
        let (handle, control) = control_channel();
        let other = handle.clone();
        // A command sent while the pile runs waits for it; when the pile stops, it is dropped.
        let waiting = tokio::spawn(async move { other.state().await });
        tokio::task::yield_now().await;
        drop(control);
        assert_eq!(waiting.await.unwrap(), None);
        assert_eq!(handle.state().await, None, "sent after the stop");
        assert_eq!(handle.provision("HeartbeatInterval", "60").await, None);
    }

    #[tokio::test]
    async fn the_pile_sees_its_commands_in_order_and_the_end_of_its_handles() {
        let (handle, control) = control_channel();
        let (a, _ra) = oneshot::channel();
        let (b, _rb) = oneshot::channel();
        handle.send(Command::State { reply: a });
        handle.send(Command::State { reply: b });
        let copy = handle.clone();
        drop(handle);
        assert!(matches!(control.recv().await, Some(Command::State { .. })));
        assert!(matches!(control.recv().await, Some(Command::State { .. })));
        drop(copy);
        assert!(control.recv().await.is_none(), "every handle gone");
    }
}
