//! The pile's loop: the core, what it asked for and has not been done yet, the connection,
//! the pings, the transfers, the log book and the counters. Each thing that can wake the pile
//! has a method of its own; the loop waits for the first of them and carries out what the
//! core answers.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use pile_core::config::keys;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use transport::client::connect;
use transport::{Message, TransportError, WsError, WsStream};

use super::control::Command;
use super::mirror::{feed, HardwareMirror};
use super::{client_config, snapshot, Control, PileSettings, ShellError, RESET_RETRY_DELAY};
use crate::config::Configuration;
use crate::hardware::{Hardware, HardwareEvent};
use crate::insight::Insight;
use crate::link::{LinkWriter, WriteFailed};
use crate::logbook::LogBook;
use crate::store::PileStore;
use crate::telemetry::{CallTimer, Share, Telemetry};
use crate::transfer::{download, download_bytes, image_version, upload};
use crate::{ChargePoint, DiagnosticsEvent, FirmwareEvent, Input, Output, Target, Upload};

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

/// The connection: its writer (a task of its own), its reading half, and the attempt under way.
#[derive(Default)]
struct Link {
    sink: Option<LinkWriter>,
    stream: Option<Stream>,
    /// How many links were made (tells a failure of this link from an older one's).
    links: u64,
    /// Why the current link's writer failed, if it does.
    failed: Option<oneshot::Receiver<WriteFailed>>,
    connecting: Option<JoinHandle<Result<WsStream, TransportError>>>,
}

impl Link {
    fn is_up(&self) -> bool {
        self.sink.is_some()
    }

    /// The link is dropped (its writer ends without closing).
    fn drop_link(&mut self) {
        (self.sink, self.stream) = (None, None);
    }

    fn abort_connecting(&mut self) {
        if let Some(old) = self.connecting.take() {
            old.abort();
        }
    }
}

/// WebSocketPingInterval: a ping every interval; no pong within the next interval (at least
/// 10 s) closes the dead link.
#[derive(Default)]
struct Pings {
    interval: Duration,
    next: Option<Instant>,
    pong_deadline: Option<Instant>,
    /// The interval the next ping was planned with.
    scheduled_with: Duration,
}

impl Pings {
    /// Plans the next ping for the interval now in force (none without a link).
    fn plan(&mut self, interval: Duration, linked: bool) {
        self.interval = interval;
        if !linked || interval.is_zero() {
            (self.next, self.pong_deadline) = (None, None);
        } else if self.pong_deadline.is_none()
            && (self.next.is_none() || self.scheduled_with != interval)
        {
            self.next = Some(Instant::now() + interval);
            self.scheduled_with = interval;
        }
    }
}

/// Firmware downloads and diagnostics uploads run beside the loop and report through a
/// channel made when the transfer starts (an idle pile holds none).
#[derive(Default)]
struct Transfers {
    firmware: Option<mpsc::UnboundedReceiver<FirmwareEvent>>,
    downloading: Option<JoinHandle<()>>,
    diagnostics: Option<mpsc::UnboundedReceiver<DiagnosticsEvent>>,
    uploading: Option<JoinHandle<()>>,
}

async fn next_message(stream: &mut Option<Stream>) -> Option<Result<Message, WsError>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// The connection, or why not, with the HTTP status when the central refused the handshake.
async fn connected(
    task: &mut Option<JoinHandle<Result<WsStream, TransportError>>>,
) -> Result<WsStream, (String, Option<u16>)> {
    match task {
        Some(t) => match t.await {
            Ok(Ok(ws)) => Ok(ws),
            Ok(Err(e)) => {
                let status = match &e {
                    TransportError::Refused { status, .. } => Some(*status),
                    _ => None,
                };
                Err((e.to_string(), status))
            }
            Err(e) => Err((e.to_string(), None)),
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

/// A core from the durable state, told what the hardware looks like: at start, and again
/// after a Reset.
fn boot_core(
    settings: &PileSettings,
    store: &mut dyn PileStore,
    now: Duration,
    mirror: &HardwareMirror,
) -> Result<(ChargePoint, Vec<Output>), ShellError> {
    let durable = store.load()?.unwrap_or_default();
    let config = Configuration::restore(settings.factory.clone(), durable.config());
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
}

/// A running pile.
pub(super) struct Host {
    settings: PileSettings,
    store: Box<dyn PileStore>,
    hardware: Box<dyn Hardware>,
    control: Control,
    /// Whether the control channel may still bring commands.
    control_open: bool,
    /// The core's monotonic time counts from here.
    start: Instant,
    cp: ChargePoint,
    /// What the core asked for and is not done yet, in order.
    todo: VecDeque<Output>,
    mirror: HardwareMirror,
    link: Link,
    pings: Pings,
    transfers: Transfers,
    logbook: LogBook,
    counted: Counted,
}

impl Host {
    /// A pile started from the state in `store`.
    pub(super) fn start(
        settings: PileSettings,
        mut store: Box<dyn PileStore>,
        hardware: Box<dyn Hardware>,
        control: Control,
    ) -> Result<Host, ShellError> {
        let start = Instant::now();
        let mirror = HardwareMirror::new();
        let (cp, first) = boot_core(&settings, store.as_mut(), Duration::ZERO, &mirror)?;
        Ok(Host {
            counted: Counted {
                telemetry: settings.telemetry.clone(),
                share: Share::default(),
                calls: CallTimer::default(),
            },
            logbook: LogBook::with_budget(settings.log_budget),
            settings,
            store,
            hardware,
            control,
            control_open: true,
            start,
            cp,
            todo: first.into(),
            mirror,
            link: Link::default(),
            pings: Pings::default(),
            transfers: Transfers::default(),
        })
    }

    /// Runs until `shutdown` completes or the state cannot be saved.
    pub(super) async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ShellError> {
        tokio::pin!(shutdown);
        loop {
            self.carry_out().await?;
            self.before_waiting();
            let deadline = self.cp.next_deadline().map(|d| self.start + d);
            // Hardware events first: what the control port did before asking something is
            // always seen before the question.
            let outputs = tokio::select! {
                biased;
                event = self.hardware.next_event() => self.on_hardware(event),
                message = next_message(&mut self.link.stream) => self.on_message(message),
                result = connected(&mut self.link.connecting) => self.on_connected(result),
                command = self.control.recv(), if self.control_open => {
                    self.on_command(command).await?
                }
                Some(event) = next_of(&mut self.transfers.firmware) => self.on_firmware(event),
                Some(event) = next_of(&mut self.transfers.diagnostics) => {
                    self.on_diagnostics(event)
                }
                _ = sleep_until(deadline) => self.on_deadline(),
                _ = sleep_until(self.pings.next) => self.on_ping_due(),
                failure = failure_of(&mut self.link.failed) => self.on_write_failure(failure),
                _ = sleep_until(self.pings.pong_deadline) => self.on_pong_missed(),
                _ = &mut shutdown => return self.shut_down().await,
            };
            self.todo.extend(outputs);
        }
    }

    /// The next ping planned, and the shared counters brought up to date.
    fn before_waiting(&mut self) {
        let interval = self.cp.config().seconds(keys::WEB_SOCKET_PING_INTERVAL);
        self.pings.plan(interval, self.link.is_up());
        let charging = (1..=self.cp.connector_count())
            .filter(|c| self.cp.relay_closed(*c))
            .count() as i64;
        self.counted
            .update(self.link.is_up(), self.cp.is_accepted(), charging);
    }

    fn wall_now(&self) -> ocpp::Timestamp {
        self.cp.wall_time(self.start.elapsed())
    }

    /// The pile woke: the meters of the connectors that deliver energy are read now, before
    /// the core takes what woke it, so that whatever it samples, stops or limits sees this
    /// instant. The core's time now.
    fn woke(&mut self) -> Duration {
        let now = self.start.elapsed();
        for connector in 1..=self.cp.connector_count() {
            if !self.cp.relay_closed(connector) {
                continue;
            }
            if let Some(reading) = self.hardware.read_meter(connector) {
                let event = HardwareEvent::Meter { connector, reading };
                self.mirror.record(&event);
                self.todo.extend(feed(&mut self.cp, &event, now));
            }
        }
        now
    }

    // What woke the pile.

    fn on_hardware(&mut self, event: Option<HardwareEvent>) -> Vec<Output> {
        let now = self.woke();
        let Some(event) = event else {
            // The hardware is gone: nothing more comes from it.
            self.hardware = Box::new(crate::hardware::NoHardware);
            return Vec::new();
        };
        self.mirror.record(&event);
        let mut out = feed(&mut self.cp, &event, now);
        if !self.mirror.online() && (self.link.is_up() || self.link.connecting.is_some()) {
            tracing::warn!("network down");
            self.link.drop_link();
            self.link.abort_connecting();
            out.extend(self.cp.handle(Input::Disconnected, now));
        }
        out
    }

    fn on_message(&mut self, message: Option<Result<Message, WsError>>) -> Vec<Output> {
        let now = self.woke();
        match message {
            Some(Ok(Message::Text(text))) => {
                // A write-only key's value (AuthorizationKey) goes into no log.
                let logged = crate::config::redacted(text.as_str());
                tracing::debug!(frame = logged.as_ref(), "received");
                self.counted.count(|t| &t.frames_received);
                self.counted.received(text.as_str());
                self.logbook
                    .record(self.cp.wall_time(now), "receive", logged.as_ref());
                self.cp.handle(Input::Frame(text.as_str()), now)
            }
            Some(Ok(Message::Pong(_))) => {
                self.pings.pong_deadline = None;
                Vec::new()
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                tracing::warn!("connection lost");
                self.counted.count(|t| &t.failures);
                self.logbook
                    .record(self.cp.wall_time(now), "event", "connection lost");
                self.link.drop_link();
                self.cp.handle(Input::Disconnected, now)
            }
            Some(Ok(_)) => Vec::new(),
        }
    }

    fn on_connected(&mut self, result: Result<WsStream, (String, Option<u16>)>) -> Vec<Output> {
        self.link.connecting = None;
        let now = self.woke();
        match result {
            Ok(ws) => {
                tracing::info!("connected");
                self.counted.count(|t| &t.connections);
                self.counted.calls.forget();
                let line = format!("connected to {}", self.cp.target().url);
                self.logbook.record(self.cp.wall_time(now), "event", &line);
                let (s, r) = ws.split();
                self.link.links += 1;
                let (writer, failure) =
                    LinkWriter::start(s, self.link.links, self.settings.write_timeout);
                self.link.failed = Some(failure);
                (self.link.sink, self.link.stream) = (Some(writer), Some(r));
                self.cp.handle(Input::Connected, now)
            }
            Err((e, status)) => {
                tracing::warn!("connection failed: {e}");
                self.counted.count(|t| &t.failures);
                match status {
                    Some(status) => self.cp.handle(Input::Refused { status }, now),
                    None => self.cp.handle(Input::Disconnected, now),
                }
            }
        }
    }

    async fn on_command(&mut self, command: Option<Command>) -> Result<Vec<Output>, ShellError> {
        let now = self.woke();
        match command {
            Some(Command::Provision { key, value, reply }) => {
                let (change, out) = self.cp.provision(&key, &value, now);
                // Carried out (and so persisted) before the reply.
                self.todo.extend(out);
                while let Some(o) = self.todo.pop_front() {
                    if o == Output::Persist {
                        self.store.save(self.cp.durable()).await?;
                    } else {
                        self.todo.push_front(o);
                        break;
                    }
                }
                let _ = reply.send(change.status);
            }
            Some(Command::State { reply }) => {
                let state = snapshot(
                    &self.cp,
                    &self.settings,
                    self.link.is_up(),
                    self.mirror.online(),
                );
                let _ = reply.send(state);
            }
            None => self.control_open = false,
        }
        Ok(Vec::new())
    }

    fn on_firmware(&mut self, event: FirmwareEvent) -> Vec<Output> {
        let now = self.woke();
        self.cp.handle(Input::Firmware(&event), now)
    }

    fn on_diagnostics(&mut self, event: DiagnosticsEvent) -> Vec<Output> {
        let now = self.woke();
        self.cp.handle(Input::Diagnostics(&event), now)
    }

    /// The core's next deadline came.
    fn on_deadline(&mut self) -> Vec<Output> {
        let now = self.woke();
        self.cp.handle(Input::Tick, now)
    }

    fn on_ping_due(&mut self) -> Vec<Output> {
        self.woke();
        self.pings.next = None;
        let interval = self.pings.interval;
        if let Some(s) = self.link.sink.as_ref().filter(|_| !interval.is_zero()) {
            self.pings.pong_deadline = Some(Instant::now() + interval.max(Duration::from_secs(10)));
            s.ping();
        }
        Vec::new()
    }

    /// The link's writer ended: failed (a write that failed or took too long), or not.
    fn on_write_failure(&mut self, failure: Option<WriteFailed>) -> Vec<Output> {
        self.link.failed = None;
        let now = self.woke();
        let Some(failure) = failure else {
            return Vec::new();
        };
        if self
            .link
            .sink
            .as_ref()
            .is_none_or(|s| s.link != failure.link)
        {
            return Vec::new();
        }
        tracing::warn!("{}: closing the connection", failure.why);
        self.counted.count(|t| &t.failures);
        self.logbook
            .record(self.cp.wall_time(now), "event", &failure.why);
        self.link.drop_link();
        self.cp.handle(Input::Disconnected, now)
    }

    fn on_pong_missed(&mut self) -> Vec<Output> {
        let now = self.woke();
        tracing::warn!("no pong: closing a dead link");
        self.counted.count(|t| &t.failures);
        self.link.drop_link();
        self.cp.handle(Input::Disconnected, now)
    }

    /// The pile stops: the connection is closed.
    async fn shut_down(self) -> Result<(), ShellError> {
        if let Some(s) = self.link.sink {
            s.close().await;
        }
        Ok(())
    }

    // What the core asked for.

    /// Carries out the core's outputs in order: a Persist is durable before anything after it.
    async fn carry_out(&mut self) -> Result<(), ShellError> {
        while let Some(output) = self.todo.pop_front() {
            match output {
                Output::Persist => self.store.save(self.cp.durable()).await?,
                Output::Log(line) => {
                    tracing::warn!("{line}");
                    let at = self.wall_now();
                    self.logbook.record(at, "event", &line);
                }
                Output::Insight(target) => self.stream_log(target),
                Output::Upload(job) => self.upload(job),
                Output::Download { url, image } => self.download(url, image),
                Output::Hardware(command) => {
                    tracing::debug!(?command, "hardware");
                    self.hardware.command(&command);
                }
                Output::Send(frame) => self.send(frame),
                Output::Connect(target) => self.connect(target),
                Output::Restart { hard } => self.restart(hard).await?,
            }
        }
        Ok(())
    }

    /// Streams the log to an MQTT broker, or stops (DBGEnableInsight).
    fn stream_log(&mut self, target: Option<(String, u16)>) {
        let settings = &self.settings;
        self.logbook.set_insight(target.and_then(|(host, port)| {
            Insight::start(
                &settings.factory.serial_number,
                &host,
                port,
                settings.tls.clone(),
            )
        }));
    }

    fn upload(&mut self, job: Upload) {
        if let Some(old) = self.transfers.uploading.take() {
            old.abort();
        }
        let body = match &job.body {
            Some(text) => text.clone().into_bytes(),
            None => self.logbook.render(job.start, job.stop),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        self.transfers.diagnostics = Some(rx);
        let tls = self.settings.tls.clone();
        self.transfers.uploading = Some(tokio::spawn(async move {
            let event = match upload(&job.location, &job.file_name, body, tls).await {
                Ok(()) => DiagnosticsEvent::Uploaded,
                Err(e) => match e.refusal() {
                    Some(reason) => DiagnosticsEvent::Refused(reason, e.to_string()),
                    None => DiagnosticsEvent::Failed(e.to_string()),
                },
            };
            let _ = tx.send(event);
        }));
    }

    /// Downloads the image; with `image`, its bytes go back to the core with the finished
    /// download (read back from the image file, or kept in memory without one).
    fn download(&mut self, url: String, image: bool) {
        if let Some(old) = self.transfers.downloading.take() {
            old.abort();
        }

        tracing::info!(url, "firmware download");
        let (tx, rx) = mpsc::unbounded_channel();
        self.transfers.firmware = Some(rx);
        let dest = self.settings.firmware_file.clone();
        let tls = self.settings.tls.clone();
        self.transfers.downloading = Some(tokio::spawn(async move {
            let progress = |p| {
                let _ = tx.send(FirmwareEvent::Progress(p));
            };
            let fetched = match (image, dest.as_deref()) {
                (false, dest) => download(&url, dest, tls, progress)
                    .await
                    .map(|size| (size, None)),
                (true, None) => download_bytes(&url, tls, progress)
                    .await
                    .map(|bytes| (bytes.len() as u64, Some(bytes))),
                (true, Some(dest)) => match download(&url, Some(dest), tls, progress).await {
                    Ok(_) => tokio::fs::read(dest)
                        .await
                        .map(|bytes| (bytes.len() as u64, Some(bytes)))
                        .map_err(crate::transfer::TransferError::from),
                    Err(e) => Err(e),
                },
            };
            let event = match fetched {
                Ok((size, image)) => FirmwareEvent::Downloaded {
                    version: image_version(&url, size),
                    image,
                },
                Err(e) => FirmwareEvent::Failed(e.to_string()),
            };
            let _ = tx.send(event);
        }));
    }

    fn send(&mut self, frame: String) {
        let Some(s) = self.link.sink.as_ref() else {
            return;
        };
        tracing::debug!(frame, "send");
        self.counted.count(|t| &t.frames_sent);
        self.counted.sent(&frame);
        self.logbook
            .record(self.cp.wall_time(self.start.elapsed()), "send", &frame);
        s.send(frame);
    }

    fn connect(&mut self, target: Target) {
        self.link.drop_link();
        self.link.abort_connecting();
        if self.mirror.online() {
            tracing::info!(url = target.url, "connecting");
            let settings = &self.settings;
            let mut client =
                match client_config(&target, settings.tls.clone(), &settings.tls_versions) {
                    Ok(client) => client,
                    Err(e) => {
                        // No TLS configuration from what the core named: the attempt fails.
                        let line = format!("no TLS configuration for {}: {e}", target.url);
                        tracing::warn!("{line}");
                        let at = self.wall_now();
                        self.logbook.record(at, "event", &line);
                        let now = self.start.elapsed();
                        self.todo.extend(self.cp.handle(Input::Disconnected, now));
                        return;
                    }
                };
            client.resolve = self.settings.resolve.clone();
            client.bind = self.settings.bind;
            self.link.connecting = Some(tokio::spawn(async move { connect(&client).await }));
        } else {
            // No network: the attempt fails at once, and the core backs off.
            let now = self.start.elapsed();
            self.todo.extend(self.cp.handle(Input::Disconnected, now));
        }
    }

    /// Reset: the connection closed, the transfers abandoned, a new core from the durable state.
    async fn restart(&mut self, hard: bool) -> Result<(), ShellError> {
        tracing::info!(hard, "reset: restarting");
        let at = self.wall_now();
        self.logbook.record(
            at,
            "event",
            if hard { "hard restart" } else { "soft restart" },
        );
        if let Some(s) = self.link.sink.take() {
            s.close().await;
        }
        self.link.stream = None;
        self.link.abort_connecting();
        if let Some(old) = self.transfers.downloading.take() {
            old.abort();
        }
        // A restart that cannot reload the state is tried again, ResetRetries times, before
        // the pile gives up.
        let retries = self.cp.config().int(keys::RESET_RETRIES).max(0) as u32;
        let mut attempt = 0;
        let (fresh, first) = loop {
            let now = self.start.elapsed();
            match boot_core(&self.settings, self.store.as_mut(), now, &self.mirror) {
                Ok(core) => break core,
                Err(e) if attempt < retries => {
                    attempt += 1;
                    tracing::warn!("reset failed: {e}; retry {attempt} of {retries}");
                    tokio::time::sleep(RESET_RETRY_DELAY).await;
                }
                Err(e) => return Err(e),
            }
        };
        self.cp = fresh;
        self.todo.clear();
        self.todo.extend(first);
        Ok(())
    }
}
