//! The charge point as a sans-I/O state machine: [`Input`]s in, [`Output`]s out, time passed in
//! by the caller. Nothing here blocks, sleeps or touches the network or the disk.

mod authorization;
mod charging;
mod commands;
mod connector;
mod diagnostics;
mod firmware;
mod local_list;
mod log_upload;
mod profiles;
mod reservation;
mod security;
mod session;
mod signed_firmware;
mod signing;
mod status;
mod transaction;

pub use charging::DERATING_FROM_C;
pub use commands::RESET_STOP_WAIT;
pub use diagnostics::{DiagnosticsEvent, Upload, UploadRefusal};
pub use firmware::{FirmwareEvent, FIRMWARE_KEEPALIVE, INSTALL_TIME};
pub use security::CLOCK_STEP_EVENT;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ocpp::rpc::{CallFailure, Endpoint, Inbound, Ticket};
use ocpp::{
    Action, AuthorizationStatus, AvailabilityStatus, AvailabilityType, BootNotificationRequest,
    CallError, ChangeAvailabilityResponse, ChangeConfigurationResponse, ChargePointErrorCode,
    ChargePointStatus, CiString20, CiString25, CiString255, CiString50, DataTransferResponse,
    DataTransferStatus, Decoded, DiagnosticsStatusNotificationRequest,
    FirmwareStatusNotificationRequest, HeartbeatRequest, IdTagInfo, MessageTrigger, Policy,
    RegistrationStatus, Request, ResetResponse, ResetStatus, ResetType, Response,
    StatusNotificationRequest, TriggerMessageResponse, TriggerMessageStatus,
    UnlockConnectorResponse, UnlockStatus,
};

use ocpp::identity::url_with_identity;

use crate::clock::WallClock;
use crate::config::{keys, Change, Configuration, OnChange};
use crate::durable::Durable;
use crate::faults::{self, Assessment, Effect, Fault};
use crate::hardware::{Beep, HardwareCommand, MeterReading, Pilot};
use ocpp::{MeterValuesRequest, ReadingContext};
use oem::NetState;

/// What the pile says about itself in BootNotification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub vendor: String,
    pub model: String,
    pub firmware_version: String,
    /// The meter, for BootNotification's meterType and meterSerialNumber.
    pub meter_type: Option<String>,
    pub meter_serial_number: Option<String>,
}

/// Tunables of the core that are not OCPP configuration keys.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for the answer to a CALL.
    pub call_timeout: Duration,
    /// After new server settings, how long the pile waits for an accepted boot before it falls
    /// back to the last settings that worked. `None`: never (the real pile's behaviour).
    pub settings_fallback: Option<Duration>,
    /// Reconnection backoff: first delay and ceiling (jittered by up to a quarter).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The most current a connector offers (A).
    pub rated_current_a: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            call_timeout: Duration::from_secs(30),
            settings_fallback: Some(Duration::from_secs(300)),
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
            rated_current_a: 32.0,
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The whole URL (with the identity unless UrlHasServerToken).
    pub url: String,
    /// HTTP Basic user and password, when the settings carry a password.
    pub basic: Option<(String, String)>,
    /// Under security profile 2 or 3 (and `wss://`): the installed CentralSystemRootCertificates
    /// (PEM), the only trust anchors for the central system's certificate. `None`: the host's
    /// own (the CA it was given).
    pub trust_anchors: Option<String>,
    /// Under security profile 3: the pile's client certificate, presented in the handshake.
    pub client_identity: Option<ClientIdentity>,
}

/// A client certificate for TLS: the chain (leaf first) and its key, PEM. Its `Debug` leaves
/// the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// An event for the core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// The websocket to the last [`Output::Connect`] target is open.
    Connected,
    /// The connection failed or closed.
    Disconnected,
    /// The central system refused the websocket handshake with this HTTP status: as
    /// [`Input::Disconnected`]; a 401 (the Basic credentials) or 403 (the client certificate)
    /// is a FailedToAuthenticateAtCentralSystem security event, the first of a run of failed
    /// attempts only.
    Refused { status: u16 },
    /// A text frame arrived.
    Frame(&'a str),
    /// The hardware's active faults changed; this is the whole set now.
    Faults(&'a BTreeSet<Fault>),
    /// The network changed (interface, signal, SIM, address).
    Network(&'a NetState),
    /// A plug went into a connector, or came out.
    Plug { connector: u32, plugged: bool },
    /// A connector's meter reads this now.
    Meter {
        connector: u32,
        reading: &'a MeterReading,
    },
    /// A connector's control pilot reads this state now.
    Pilot { connector: u32, state: Pilot },
    /// The cable's capacity read through CC; `None`: no valid CC resistor.
    Cable { connector: u32, amps: Option<f64> },
    /// A card at the reader of a connector, or of the whole pile (`None`).
    Card {
        connector: Option<u32>,
        id_tag: &'a str,
    },
    /// What became of a firmware download ([`Output::Download`]).
    Firmware(&'a FirmwareEvent),
    /// What became of a diagnostics upload ([`Output::Upload`]).
    Diagnostics(&'a DiagnosticsEvent),
    /// Time passed; timers are checked.
    Tick,
}

/// Something for the shell to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Close any open connection and connect to this target.
    Connect(Target),
    /// Write this frame.
    Send(String),
    /// Make the durable state ([`ChargePoint::durable`]) durable before carrying out the
    /// outputs after it. Writing it later, once all outputs of the same call are taken, is
    /// as good: it then holds what the outputs after this one say, and more.
    Persist,
    /// Restart the pile: close the connection and start a new core from the durable state
    /// (Reset; `hard` for a hard reset).
    Restart { hard: bool },
    /// Act on the hardware (relay, pilot, lock, buzzer).
    Hardware(HardwareCommand),
    /// Download a firmware image from this URL and report through [`Input::Firmware`]
    /// (a download still running is abandoned); with `image`, the finished download hands the
    /// image's bytes over (a signed image: the core checks its signature over them).
    Download { url: String, image: bool },
    /// Upload the pile's log (GetDiagnostics) and report through [`Input::Diagnostics`].
    Upload(Upload),
    /// Stream the pile's log to this MQTT broker (`host`, `port`), or stop (DBGEnableInsight).
    Insight(Option<(String, u16)>),
    /// A decision of the core worth a line in the pile's log (a message dropped after its
    /// attempts, a failed download or upload, a fallback of the server settings): the host
    /// logs it and keeps it in the log book that GetDiagnostics uploads.
    Log(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// No BootNotification accepted since the pile started (or since its identity or server changed).
    NotBooted,
    Pending,
    Rejected,
    Accepted,
}

/// The charge point.
pub struct ChargePoint {
    config: Configuration,
    /// What the pile is and how it behaves where OCPP leaves a choice.
    settings: Settings,
    /// The pile's clock (the one the central corrects) and the time of the last input.
    time: Time,
    /// The OCPP endpoint, what each CALL of ours awaits, and the outputs not yet handed out.
    link: Link,
    durable: Durable,
    /// The connection and the boot.
    session: session::Session,
    /// What the hardware last reported beyond the connectors: faults, the network.
    hardware: HardwareView,
    /// Each connector's state; index 0 is the pile as a whole.
    connectors: Vec<connector::Connector>,
    /// The Authorize.req on its way, and the profile of the remote start it is for.
    authorization: authorization::AuthorizationRun,
    /// The outbox message on its way, and when to try again after a failure.
    outbox: transaction::OutboxRun,
    /// The SecurityEventNotification on its way, and when to try again after a failure.
    security: security::SecurityRun,
    /// When the next clock-aligned meter values are due.
    metering: Metering,
    /// The diagnostics upload under way.
    diagnostics: Option<diagnostics::DiagnosticsRun>,
    /// The firmware upgrade as it runs.
    firmware_run: firmware::FirmwareRun,
    /// A reset under way.
    reset: commands::ResetRun,
}

#[derive(Debug, Clone)]
struct Settings {
    identity: Identity,
    options: Options,
}

#[derive(Debug, Clone)]
struct Time {
    clock: WallClock,
    /// The time of the last input, for statuses that depend on time.
    now: Duration,
}

struct Link {
    rpc: Endpoint,
    /// What each CALL awaiting its answer is for (CALLs not listed need nothing done with
    /// the answer but the clock of a Heartbeat).
    awaited: BTreeMap<Ticket, Awaited>,
    outputs: Vec<Output>,
}

#[derive(Debug, Clone, Default)]
struct Metering {
    next_aligned: Option<Duration>,
}

/// What the hardware last reported of the pile as a whole.
#[derive(Debug, Clone, Default)]
struct HardwareView {
    faults: BTreeSet<Fault>,
    network: NetState,
}

/// What a CALL of ours awaits its answer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaited {
    Boot,
    /// A transaction message of the outbox.
    Outbox,
    Authorize,
    /// A FirmwareStatusNotification (the restart after Installed waits for its answer).
    Firmware,
    /// A SecurityEventNotification of the security queue.
    SecurityEvent,
    /// SignCertificate (a refusal is logged).
    SignCertificate,
}

/// What a StatusNotification said: status, error code, vendor error code.
type Reported = (ChargePointStatus, ChargePointErrorCode, Option<String>);

/// How long to wait before another BootNotification when the central gave no interval.
const BOOT_RETRY: Duration = Duration::from_secs(60);
/// The longest new server settings wait for the answer to a CALL in flight.
const MOVE_WAIT: Duration = Duration::from_secs(2);

fn target_of(config: &Configuration, durable: &Durable) -> Target {
    let settings = config.websocket_settings();
    let base = settings.base_url();
    let url = if config.flag(keys::URL_HAS_SERVER_TOKEN) {
        base
    } else {
        url_with_identity(&base, config.identity())
    };
    // AuthorizationKey, once set, is the password, with the identity as the user (security
    // whitepaper §2.4); else the vendor settings' password, if any.
    let key = config.text(keys::AUTHORIZATION_KEY);
    let basic = if !key.is_empty() {
        Some((config.identity().to_owned(), key.to_owned()))
    } else {
        (!settings.password.is_empty()).then(|| {
            let user = if settings.user.is_empty() {
                config.identity().to_owned()
            } else {
                settings.user.clone()
            };
            (user, settings.password.clone())
        })
    };
    let profile = config.int(keys::SECURITY_PROFILE);
    let trust_anchors = (profile >= 2 && settings.secure).then(|| {
        durable
            .certificates()
            .iter()
            .filter(|c| c.store == crate::certificates::Store::CentralSystemRoot)
            .map(|c| crate::client_certificate::pem("CERTIFICATE", &c.der))
            .collect::<String>()
    });
    let client_identity = durable
        .client_certificate()
        .filter(|_| profile >= 3 && settings.secure)
        .map(|c| ClientIdentity {
            chain_pem: c.chain_pem(),
            key_pem: c.key_pem(),
        });
    Target {
        url,
        basic,
        trust_anchors,
        client_identity,
    }
}

impl ChargePoint {
    /// Starts the core from its durable state. `now` is the monotonic time, `wall` the
    /// wall-clock time at that instant.
    pub fn new(
        config: Configuration,
        identity: Identity,
        options: Options,
        mut durable: Durable,
        now: Duration,
        wall: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let boots = durable.count_boot();
        durable.record_config(config.snapshot());
        let connectors = config.int(keys::NUMBER_OF_CONNECTORS).max(0) as usize;
        let jitter = config
            .factory()
            .serial_number
            .bytes()
            .fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
            });
        let rpc = Endpoint::new(Policy::Strict, options.call_timeout, format!("{boots}-"));
        let target = target_of(&config, &durable);
        let mut cp = ChargePoint {
            config,
            settings: Settings { identity, options },
            time: Time {
                clock: WallClock::new(wall, now),
                now,
            },
            link: Link {
                rpc,
                awaited: BTreeMap::new(),
                outputs: Vec::new(),
            },
            durable,
            session: session::Session::new(target.clone(), now, jitter),
            hardware: HardwareView::default(),
            connectors: vec![connector::Connector::default(); connectors + 1],
            authorization: Default::default(),
            outbox: Default::default(),
            security: Default::default(),
            metering: Metering::default(),
            reset: Default::default(),
            firmware_run: Default::default(),
            diagnostics: None,
        };
        cp.stop_interrupted();
        cp.resume_firmware();
        cp.metering.next_aligned = cp.next_aligned_after(now);
        cp.startup_event(now);
        cp.link.outputs.push(Output::Persist);
        cp.link.outputs.push(Output::Insight(cp.insight_target()));
        cp.link.outputs.push(Output::Connect(target));
        cp
    }

    /// A key's value as GetConfiguration would report it (live keys computed).
    pub fn config_value(&self, name: &str) -> String {
        match crate::config::spec(name).map(|s| s.kind) {
            Some(crate::config::Kind::Live(which)) => self.live_value(which),
            _ => self.config.get(name).unwrap_or_default().to_owned(),
        }
    }

    /// The pile's clock (the one the central system sets) at monotonic instant `now`: what
    /// the log book time-stamps with.
    pub fn wall_time(&self, now: Duration) -> ocpp::Timestamp {
        self.time.clock.at(now)
    }

    pub fn network(&self) -> &NetState {
        &self.hardware.network
    }

    pub fn faults(&self) -> &BTreeSet<Fault> {
        &self.hardware.faults
    }

    pub fn is_plugged(&self, connector: u32) -> bool {
        self.connectors
            .get(connector as usize)
            .is_some_and(|c| c.is_plugged())
    }

    pub fn config(&self) -> &Configuration {
        &self.config
    }

    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    pub fn is_accepted(&self) -> bool {
        self.session.is_accepted()
    }

    pub fn target(&self) -> &Target {
        self.session.target()
    }

    pub fn connector_count(&self) -> u32 {
        (self.connectors.len() - 1) as u32
    }

    /// When [`ChargePoint::handle`] should next be called with [`Input::Tick`].
    pub fn next_deadline(&self) -> Option<Duration> {
        let heartbeat = (self.session.connected()
            && self.is_accepted()
            && self.heartbeat_interval() > Duration::ZERO)
            .then(|| self.session.last_activity() + self.heartbeat_interval());
        let fallback = self
            .session
            .trying_settings_since()
            .zip(self.settings.options.settings_fallback)
            .map(|(since, after)| since + after);
        let preparing = self
            .connectors
            .iter()
            .filter_map(|c| c.plugged_since())
            .chain(
                self.connectors
                    .iter()
                    .filter_map(|s| s.authorized().map(|a| a.since)),
            )
            .map(|since| since + self.connection_timeout())
            .filter(|t| *t > self.time.now)
            .min();
        let sample = self.connectors.iter().filter_map(|s| s.next_sample()).min();
        let hold = self.config.seconds(keys::MINIMUM_STATUS_DURATION);
        let held = self
            .session
            .online()
            .then(|| {
                self.connectors
                    .iter()
                    .filter_map(|c| c.held())
                    .map(|(_, since)| *since + hold)
                    .min()
            })
            .flatten();
        [
            self.link.rpc.next_deadline(),
            self.session.deadlines()[0],
            self.session.deadlines()[1],
            self.session.deadlines()[2],
            heartbeat,
            fallback,
            preparing,
            held,
            sample,
            self.next_expiry(),
            self.next_profile_change(),
            self.next_firmware_deadline(),
            self.next_diagnostics_attempt(),
            self.metering.next_aligned,
            self.outbox.retry_at(),
            self.security.retry_at(),
            self.reset.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Takes one input and returns what the shell must do, in order.
    pub fn handle(&mut self, input: Input<'_>, now: Duration) -> Vec<Output> {
        self.time.now = now;
        match input {
            Input::Connected => self.on_connected(now),
            Input::Disconnected => self.on_disconnected(now),
            Input::Refused { status } => {
                self.refused(status, now);
                self.on_disconnected(now);
            }
            Input::Frame(text) => {
                let inbound = self.link.rpc.handle_frame(text, now);
                self.on_inbound(inbound, now);
            }
            Input::Tick => self.on_tick(now),
            Input::Faults(faults) => {
                self.hardware.faults = faults.clone();
                if self.fault_assessment().effect == Some(Effect::Stop) {
                    // The pile cannot charge: every transaction ends.
                    let running: Vec<u32> = self.running_connectors();
                    for c in running {
                        self.stop_transaction(c, ocpp::StopReason::Other, None, now);
                    }
                }
                self.statuses_changed(now);
            }
            Input::Network(network) => self.hardware.network = network.clone(),
            Input::Meter { connector, reading } => {
                if let Some(slot) = self
                    .connectors
                    .get_mut(connector as usize)
                    .filter(|_| connector > 0)
                {
                    slot.record_reading(reading.clone());
                    // Derating and MaxEnergyOnInvalidId depend on the reading.
                    self.statuses_changed(now);
                }
            }
            Input::Plug { connector, plugged } => self.on_plug(connector, plugged, now),
            Input::Pilot { connector, state } => {
                if let Some(socket) = self
                    .connectors
                    .get_mut(connector as usize)
                    .filter(|_| connector > 0)
                {
                    socket.set_pilot(state);
                    self.statuses_changed(now);
                }
            }
            Input::Cable { connector, amps } => {
                if let Some(socket) = self
                    .connectors
                    .get_mut(connector as usize)
                    .filter(|_| connector > 0)
                {
                    socket.cable_reads(amps);
                    self.statuses_changed(now);
                }
            }
            Input::Card { connector, id_tag } => self.on_card(connector, id_tag, now),
            Input::Firmware(event) => self.on_firmware_event(event, now),
            Input::Diagnostics(event) => self.on_diagnostics_event(event, now),
        }
        self.start_what_can_start(now);
        self.drive();
        self.pump_security(now);
        self.drain_transmit();
        self.restart_when_stops_answered(now);
        std::mem::take(&mut self.link.outputs)
    }

    fn drain_transmit(&mut self) {
        while let Some(frame) = self.link.rpc.poll_transmit() {
            self.link.outputs.push(Output::Send(frame));
        }
    }

    fn call<R: ocpp::OcppRequest>(&mut self, request: &R, now: Duration) -> Ticket {
        self.session.activity(now);
        self.link.rpc.call(request, now)
    }

    fn on_inbound(&mut self, inbound: Inbound, now: Duration) {
        match inbound {
            Inbound::Call { id, request } => self.on_call(&id, request, now),
            Inbound::Reply {
                ticket,
                action,
                outcome,
            } => self.on_reply(ticket, action, outcome, now),
            Inbound::Dropped(_) => {}
        }
    }

    fn persist(&mut self) {
        self.durable.record_config(self.config.snapshot());
        self.link.outputs.push(Output::Persist);
    }

    fn respond(&mut self, id: &str, response: impl Into<Response>) {
        self.drain_transmit();
        self.link.rpc.respond(id, &response.into());
    }
}
