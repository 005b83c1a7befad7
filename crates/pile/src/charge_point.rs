//! The charge point as a sans-I/O state machine: [`Input`]s in, [`Output`]s out, time passed in
//! by the caller. Nothing here blocks, sleeps or touches the network or the disk.

use std::collections::BTreeSet;
use std::time::Duration;

use ocpp::rpc::{CallFailure, Endpoint, Inbound, Ticket};
use ocpp::{
    Action, AvailabilityStatus, AvailabilityType, BootNotificationRequest, CallError,
    CallErrorCode, ChangeAvailabilityResponse, ChangeConfigurationResponse, ChargePointErrorCode,
    ChargePointStatus, CiString20, CiString25, CiString255, CiString50, DataTransferResponse,
    DataTransferStatus, Decoded, DiagnosticsStatus, DiagnosticsStatusNotificationRequest,
    FirmwareStatus, FirmwareStatusNotificationRequest, HeartbeatRequest, MessageTrigger, Policy,
    RegistrationStatus, Request, ResetResponse, ResetStatus, ResetType, Response,
    StatusNotificationRequest, TriggerMessageResponse, TriggerMessageStatus,
    UnlockConnectorResponse, UnlockStatus,
};

use transport::identity::url_with_identity;

use crate::clock::WallClock;
use crate::config::{Change, Configuration};
use crate::durable::Durable;
use crate::faults::{self, Assessment, Effect, Fault};
use crate::hardware::MeterReading;
use ocpp::{MeterValuesRequest, ReadingContext};

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

/// The network as the pile sees it (OEM_NetState, FAQ 3.14; BootNotification's ICCID/IMSI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetState {
    /// `ETH`, `WiFi` or `4G`: the interface the connection uses.
    pub connectivity: String,
    /// RSSI in dBm; -1 when the interface is absent.
    pub wifi_rssi: i32,
    pub lte_rssi: i32,
    pub iccid: String,
    pub imsi: String,
    pub ip: String,
}

impl Default for NetState {
    fn default() -> Self {
        NetState {
            connectivity: "ETH".into(),
            wifi_rssi: -1,
            lte_rssi: -1,
            iccid: String::new(),
            imsi: String::new(),
            ip: String::new(),
        }
    }
}

impl NetState {
    /// The OEM_NetState value, in the FAQ's shape and key order.
    pub fn to_json(&self) -> String {
        let s = |v: &str| serde_json::to_string(v).expect("a str serializes");
        format!(
            r#"{{"connectivity":{},"wifi-rssi":{},"4g-rssi":{},"ccid":{},"imsi":{},"ip":{}}}"#,
            s(&self.connectivity),
            s(&self.wifi_rssi.to_string()),
            s(&self.lte_rssi.to_string()),
            s(&self.iccid),
            s(&self.imsi),
            s(&self.ip)
        )
    }
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            call_timeout: Duration::from_secs(30),
            settings_fallback: Some(Duration::from_secs(300)),
            backoff_min: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
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
}

/// An event for the core.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// The websocket to the last [`Output::Connect`] target is open.
    Connected,
    /// The connection failed or closed.
    Disconnected,
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
    /// Make this state durable before carrying out the outputs after it.
    Persist(Durable),
    /// Restart the pile: close the connection and start a new core from the durable state
    /// (Reset; `hard` for a hard reset).
    Restart { hard: bool },
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
    identity: Identity,
    options: Options,
    clock: WallClock,
    rpc: Endpoint,
    durable: Durable,
    connected: bool,
    target: Target,
    registration: Registration,
    boot_call: Option<Ticket>,
    next_boot: Option<Duration>,
    next_connect: Option<Duration>,
    failures: u32,
    last_activity: Duration,
    /// The last status reported per connector (index 0 = the whole pile).
    reported: Vec<Option<Reported>>,
    /// A changed status held back until it has lasted MinimumStatusDuration, and since when.
    pending: Vec<Option<(Reported, Duration)>>,
    faults: BTreeSet<Fault>,
    /// The last reading of each connector's meter, and the register at the previous sample
    /// (index 0 unused).
    meters: Vec<Option<MeterReading>>,
    sampled_register: Vec<Option<i64>>,
    /// Since when each connector has a plug in (index 0 unused).
    plugged_since: Vec<Option<Duration>>,
    /// The time of the last input, for statuses that depend on time.
    now: Duration,
    /// Since when unproven server settings are in force (for the fallback).
    trying_settings_since: Option<Duration>,
    jitter: u64,
    network: NetState,
    outputs: Vec<Output>,
}

/// What a StatusNotification said: status, error code, vendor error code.
type Reported = (ChargePointStatus, ChargePointErrorCode, Option<String>);

/// How long to wait before another BootNotification when the central gave no interval.
const BOOT_RETRY: Duration = Duration::from_secs(60);

fn target_of(config: &Configuration) -> Target {
    let settings = config.websocket_settings();
    let base = settings.base_url();
    let url = if config.flag("UrlHasServerToken") {
        base
    } else {
        url_with_identity(&base, config.identity())
    };
    let basic = (!settings.password.is_empty()).then(|| {
        let user = if settings.user.is_empty() {
            config.identity().to_owned()
        } else {
            settings.user.clone()
        };
        (user, settings.password.clone())
    });
    Target { url, basic }
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
        durable.boots += 1;
        durable.config = config.snapshot();
        let connectors = config.int("NumberOfConnectors").max(0) as usize;
        let jitter = config
            .factory()
            .serial_number
            .bytes()
            .fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
            });
        let rpc = Endpoint::new(
            Policy::Strict,
            options.call_timeout,
            format!("{}-", durable.boots),
        );
        let target = target_of(&config);
        let mut cp = ChargePoint {
            config,
            identity,
            options,
            clock: WallClock::new(wall, now),
            rpc,
            durable,
            connected: false,
            target: target.clone(),
            registration: Registration::NotBooted,
            boot_call: None,
            next_boot: None,
            next_connect: None,
            failures: 0,
            last_activity: now,
            reported: vec![None; connectors + 1],
            pending: vec![None; connectors + 1],
            faults: BTreeSet::new(),
            plugged_since: vec![None; connectors + 1],
            meters: vec![None; connectors + 1],
            sampled_register: vec![None; connectors + 1],
            now,
            trying_settings_since: None,
            jitter,
            network: NetState::default(),
            outputs: Vec::new(),
        };
        cp.outputs.push(Output::Persist(cp.durable.clone()));
        cp.outputs.push(Output::Connect(target));
        cp
    }

    /// A key's value as GetConfiguration would report it (live keys computed).
    pub fn config_value(&self, name: &str) -> String {
        match crate::config::spec(name).map(|s| s.kind) {
            Some(crate::config::Kind::Live) => self.live_value(name),
            _ => self.config.get(name).unwrap_or_default().to_owned(),
        }
    }

    pub fn network(&self) -> &NetState {
        &self.network
    }

    pub fn faults(&self) -> &BTreeSet<Fault> {
        &self.faults
    }

    pub fn is_plugged(&self, connector: u32) -> bool {
        self.plugged_since
            .get(connector as usize)
            .is_some_and(Option::is_some)
    }

    pub fn config(&self) -> &Configuration {
        &self.config
    }

    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    pub fn is_accepted(&self) -> bool {
        self.registration == Registration::Accepted
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn connector_count(&self) -> u32 {
        (self.reported.len() - 1) as u32
    }

    /// The status a connector shows now.
    pub fn status(&self, connector: u32) -> ChargePointStatus {
        let inoperative = (self.durable.inoperative.contains(&connector)
            || self.durable.inoperative.contains(&0))
            && !self.durable.scheduled.contains(&connector);
        if self.fault_assessment().effect == Some(Effect::Stop) {
            ChargePointStatus::Faulted
        } else if inoperative {
            ChargePointStatus::Unavailable
        } else {
            self.natural_status(connector)
        }
    }

    /// The status from the plug alone.
    fn natural_status(&self, connector: u32) -> ChargePointStatus {
        match self
            .plugged_since
            .get(connector as usize)
            .copied()
            .flatten()
        {
            // Plugged in without a transaction: Preparing until ConnectionTimeOut, then
            // Finishing, as the user still has to unplug (ERR 3.20).
            Some(since) if self.now >= since + self.connection_timeout() => {
                ChargePointStatus::Finishing
            }
            Some(_) => ChargePointStatus::Preparing,
            None => ChargePointStatus::Available,
        }
    }

    /// Scheduled changes to Unavailable take effect once their connector left Preparing.
    fn release_scheduled(&mut self) -> bool {
        let done: Vec<u32> = self
            .durable
            .scheduled
            .iter()
            .copied()
            .filter(|c| self.natural_status(*c) != ChargePointStatus::Preparing)
            .collect();
        if done.is_empty() {
            return false;
        }
        for c in done {
            self.durable.scheduled.remove(&c);
        }
        self.persist();
        true
    }

    fn connection_timeout(&self) -> Duration {
        Duration::from_secs(self.config.int("ConnectionTimeOut").max(0) as u64)
    }

    /// What the active faults amount to under the current masks.
    pub fn fault_assessment(&self) -> Assessment {
        let mask = |key| self.config.int(key).clamp(0, u32::MAX as i64) as u32;
        faults::assess(
            &self.faults,
            mask("OEM_FaultMask"),
            mask("OEM_FunctionMask"),
        )
    }

    fn reported_now(&self, connector: u32) -> Reported {
        let a = self.fault_assessment();
        (self.status(connector), a.error_code, a.vendor_error_code)
    }

    /// When [`ChargePoint::handle`] should next be called with [`Input::Tick`].
    pub fn next_deadline(&self) -> Option<Duration> {
        let heartbeat =
            (self.connected && self.is_accepted() && self.heartbeat_interval() > Duration::ZERO)
                .then(|| self.last_activity + self.heartbeat_interval());
        let fallback = self
            .trying_settings_since
            .zip(self.options.settings_fallback)
            .map(|(since, after)| since + after);
        let preparing = self
            .plugged_since
            .iter()
            .flatten()
            .map(|since| *since + self.connection_timeout())
            .filter(|t| *t > self.now)
            .min();
        let hold = Duration::from_secs(self.config.int("MinimumStatusDuration").max(0) as u64);
        let held = (self.connected && self.is_accepted())
            .then(|| {
                self.pending
                    .iter()
                    .flatten()
                    .map(|(_, since)| *since + hold)
                    .min()
            })
            .flatten();
        [
            self.rpc.next_deadline(),
            self.next_boot,
            self.next_connect,
            heartbeat,
            fallback,
            preparing,
            held,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.config.int("HeartbeatInterval").max(0) as u64)
    }

    /// Takes one input and returns what the shell must do, in order.
    pub fn handle(&mut self, input: Input<'_>, now: Duration) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Connected => self.on_connected(now),
            Input::Disconnected => self.on_disconnected(now),
            Input::Frame(text) => {
                let inbound = self.rpc.handle_frame(text, now);
                self.on_inbound(inbound, now);
            }
            Input::Tick => self.on_tick(now),
            Input::Faults(faults) => {
                self.faults = faults.clone();
                self.statuses_changed(now);
            }
            Input::Network(network) => self.network = network.clone(),
            Input::Meter { connector, reading } => {
                if let Some(slot) = self
                    .meters
                    .get_mut(connector as usize)
                    .filter(|_| connector > 0)
                {
                    *slot = Some(reading.clone());
                }
            }
            Input::Plug { connector, plugged } => {
                if let Some(slot) = self
                    .plugged_since
                    .get_mut(connector as usize)
                    .filter(|_| connector > 0)
                {
                    *slot = plugged.then_some(slot.unwrap_or(now));
                    self.statuses_changed(now);
                }
            }
        }
        self.drain_transmit();
        std::mem::take(&mut self.outputs)
    }

    fn statuses_changed(&mut self, now: Duration) {
        let report = |cp: &mut Self| {
            if cp.is_accepted() && cp.connected {
                cp.report_statuses(now, false);
            }
        };
        // What changed first (a connector leaving Preparing), then what a scheduled change to
        // Unavailable makes of it, so that each step is a transition OCPP allows.
        report(self);
        if self.release_scheduled() {
            report(self);
        }
    }

    fn drain_transmit(&mut self) {
        while let Some(frame) = self.rpc.poll_transmit() {
            self.outputs.push(Output::Send(frame));
        }
    }

    fn on_connected(&mut self, now: Duration) {
        // A new connection: whatever was in flight on an earlier one is gone.
        self.rpc.disconnect();
        self.boot_call = None;
        self.connected = true;
        self.failures = 0;
        self.next_connect = None;
        self.last_activity = now;
        match self.registration {
            Registration::Accepted => self.report_statuses(now, false),
            _ => self.send_boot(now),
        }
    }

    fn on_disconnected(&mut self, now: Duration) {
        self.connected = false;
        self.boot_call = None;
        self.next_boot = None;
        self.rpc.disconnect();
        // Exponential backoff with jitter.
        let exp = self
            .options
            .backoff_min
            .saturating_mul(1 << self.failures.min(16))
            .min(self.options.backoff_max);
        self.failures = self.failures.saturating_add(1);
        self.jitter ^= self.jitter << 13;
        self.jitter ^= self.jitter >> 7;
        self.jitter ^= self.jitter << 17;
        let spread = exp.as_millis() as u64 / 4;
        let jitter = if spread == 0 {
            0
        } else {
            self.jitter % (spread + 1)
        };
        self.next_connect = Some(now + exp + Duration::from_millis(jitter));
    }

    fn on_tick(&mut self, now: Duration) {
        self.statuses_changed(now);
        while let Some(inbound) = self.rpc.poll_timeout(now) {
            self.on_inbound(inbound, now);
        }
        if self.next_connect.is_some_and(|t| now >= t) {
            self.next_connect = None;
            self.outputs.push(Output::Connect(self.target.clone()));
        }
        if self.connected && self.next_boot.is_some_and(|t| now >= t) {
            self.send_boot(now);
        }
        if self.connected
            && self.is_accepted()
            && self.heartbeat_interval() > Duration::ZERO
            && now >= self.last_activity + self.heartbeat_interval()
        {
            self.call(&HeartbeatRequest {}, now);
        }
        if let (Some(since), Some(after)) =
            (self.trying_settings_since, self.options.settings_fallback)
        {
            if now >= since + after {
                self.fall_back(now);
            }
        }
    }

    fn call<R: ocpp::OcppRequest>(&mut self, request: &R, now: Duration) -> Ticket {
        self.last_activity = now;
        self.rpc.call(request, now)
    }

    fn boot_request(&self) -> BootNotificationRequest {
        let c20 =
            |s: &str| CiString20::new(s.chars().take(20).collect::<String>()).expect("truncated");
        let c25 =
            |s: &str| CiString25::new(s.chars().take(25).collect::<String>()).expect("truncated");
        let serial = &self.config.factory().serial_number;
        BootNotificationRequest {
            charge_point_vendor: c20(&self.identity.vendor),
            charge_point_model: c20(&self.identity.model),
            // The original serial number, whatever VendorChargePointName says (FAQ 3.2.2).
            charge_point_serial_number: Some(c25(serial)),
            charge_box_serial_number: Some(c25(serial)),
            firmware_version: Some(
                CiString50::new(
                    self.identity
                        .firmware_version
                        .chars()
                        .take(50)
                        .collect::<String>(),
                )
                .expect("truncated"),
            ),
            // ICCID and IMSI only when connected through 4G alone (FAQ 3.9).
            iccid: (self.network.connectivity == "4G" && !self.network.iccid.is_empty())
                .then(|| c20(&self.network.iccid)),
            imsi: (self.network.connectivity == "4G" && !self.network.imsi.is_empty())
                .then(|| c20(&self.network.imsi)),
            meter_type: self.identity.meter_type.as_deref().map(c25),
            meter_serial_number: self.identity.meter_serial_number.as_deref().map(c25),
        }
    }

    fn send_boot(&mut self, now: Duration) {
        self.next_boot = None;
        let request = self.boot_request();
        self.boot_call = Some(self.call(&request, now));
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

    fn on_reply(
        &mut self,
        ticket: Ticket,
        _action: Action,
        outcome: Result<Decoded<Response>, CallFailure>,
        now: Duration,
    ) {
        if self.boot_call == Some(ticket) {
            self.boot_call = None;
            match outcome {
                Ok(Decoded {
                    value: Response::BootNotification(r),
                    ..
                }) => {
                    self.clock.sync(r.current_time, now);
                    let interval = Duration::from_secs(r.interval.max(0) as u64);
                    match r.status {
                        RegistrationStatus::Accepted => self.on_accepted(r.interval, now),
                        RegistrationStatus::Pending => {
                            self.registration = Registration::Pending;
                            self.next_boot = Some(
                                now + if interval.is_zero() {
                                    BOOT_RETRY
                                } else {
                                    interval
                                },
                            );
                        }
                        _ => {
                            self.registration = Registration::Rejected;
                            self.next_boot = Some(
                                now + if interval.is_zero() {
                                    BOOT_RETRY
                                } else {
                                    interval
                                },
                            );
                        }
                    }
                }
                _ => self.next_boot = Some(now + BOOT_RETRY),
            }
            return;
        }
        if let Ok(Decoded {
            value: Response::Heartbeat(h),
            ..
        }) = outcome
        {
            self.clock.sync(h.current_time, now);
        }
    }

    fn on_accepted(&mut self, interval: i32, now: Duration) {
        self.registration = Registration::Accepted;
        if interval > 0 && self.config.int("HeartbeatInterval") != i64::from(interval) {
            // The central's interval becomes the heartbeat interval, where it is in range.
            if self
                .config
                .change("HeartbeatInterval", &interval.to_string())
                .changed
                .is_some()
            {
                self.persist();
            }
        }
        let settings = self
            .config
            .get("VendorWebsocketSettings")
            .unwrap_or_default()
            .to_owned();
        let good = Some((settings, self.config.identity().to_owned()));
        self.trying_settings_since = None;
        if self.durable.last_good != good {
            self.durable.last_good = good;
            self.persist();
        }
        // ERR 3.22: connector 0 and every connector, after an accepted boot.
        self.report_statuses(now, true);
    }

    /// Sends StatusNotification for each connector whose status differs from the last one
    /// reported (or for all with `all`).
    fn report_statuses(&mut self, now: Duration, all: bool) {
        let hold = Duration::from_secs(self.config.int("MinimumStatusDuration").max(0) as u64);
        for connector in 0..self.reported.len() as u32 {
            let c = connector as usize;
            let current = self.reported_now(connector);
            if all || hold.is_zero() {
                self.pending[c] = None;
                if all || self.reported[c].as_ref() != Some(&current) {
                    self.send_status(connector, current, now);
                }
                continue;
            }
            if self.reported[c].as_ref() == Some(&current) {
                // Back to what was last reported: whatever happened in between lasted too
                // short to report (MinimumStatusDuration).
                self.pending[c] = None;
                continue;
            }
            match self.pending[c].take() {
                Some((held, since)) if held == current => {
                    if now >= since + hold {
                        self.send_status(connector, current, now);
                    } else {
                        self.pending[c] = Some((held, since));
                    }
                }
                Some((held, _)) => {
                    // The status moved on before the held one was reported. Skipping it must
                    // still leave a transition OCPP allows; otherwise it is reported now.
                    let from = self.reported[c].as_ref().map(|r| r.0.clone());
                    let skippable = connector == 0
                        || from
                            .as_ref()
                            .is_none_or(|f| crate::transitions::allowed(f, &current.0));
                    if !skippable {
                        self.send_status(connector, held, now);
                    }
                    self.pending[c] = Some((current, now));
                }
                None => self.pending[c] = Some((current, now)),
            }
        }
    }

    fn send_status(&mut self, connector: u32, reported: Reported, now: Duration) {
        let (status, error_code, vendor_error_code) = reported.clone();
        self.reported[connector as usize] = Some(reported);
        let mask = |key| self.config.int(key).clamp(0, u32::MAX as i64) as u32;
        let (fault_mask, function_mask) = (mask("OEM_FaultMask"), mask("OEM_FunctionMask"));
        let names: Vec<&str> = self
            .faults
            .iter()
            .filter(|f| f.effect(fault_mask, function_mask).is_some())
            .map(|f| f.name())
            .collect();
        let info = (error_code != ChargePointErrorCode::NoError && !names.is_empty()).then(|| {
            let text: String = names.join(",").chars().take(50).collect();
            CiString50::new(text).expect("truncated to 50")
        });
        let vendor_id = vendor_error_code.is_some().then(|| {
            CiString255::new(self.identity.vendor.chars().take(255).collect::<String>())
                .expect("truncated")
        });
        let request = StatusNotificationRequest {
            connector_id: connector as i32,
            error_code,
            info,
            status,
            timestamp: Some(self.clock.at(now)),
            vendor_id,
            vendor_error_code: vendor_error_code.map(|v| CiString50::new(v).expect("short hex")),
        };
        self.call(&request, now);
    }

    fn persist(&mut self) {
        self.durable.config = self.config.snapshot();
        self.outputs.push(Output::Persist(self.durable.clone()));
    }

    fn respond(&mut self, id: &str, response: impl Into<Response>) {
        self.drain_transmit();
        self.rpc.respond(id, &response.into());
    }

    fn on_call(&mut self, id: &str, request: Decoded<Request>, now: Duration) {
        match request.value {
            Request::GetConfiguration(r) => {
                let live = |name: &str| self.live_value(name);
                match self.config.get_configuration(r.key.as_deref(), &live) {
                    Ok(answer) => self.respond(id, answer),
                    Err(e) => self.rpc.respond_error(id, &e),
                }
            }
            Request::ChangeConfiguration(r) => self.change_configuration(id, &r.key, &r.value, now),
            Request::ChangeAvailability(r) => {
                self.change_availability(id, r.connector_id, r.kind, now)
            }
            Request::DataTransfer(r) => {
                let status = if r.vendor_id.eq_ignore_case(&self.identity.vendor) {
                    DataTransferStatus::UnknownMessageId
                } else {
                    DataTransferStatus::UnknownVendorId
                };
                self.respond(id, DataTransferResponse { status, data: None });
            }
            Request::TriggerMessage(r) => {
                self.trigger(id, r.requested_message, r.connector_id, now)
            }
            Request::UnlockConnector(r) => {
                if r.connector_id < 1 || r.connector_id > self.connector_count() as i32 {
                    let e = CallError::new(
                        CallErrorCode::PropertyConstraintViolation,
                        format!("connector {} does not exist", r.connector_id),
                    );
                    self.rpc.respond_error(id, &e);
                } else {
                    // The socket's lock opens (no transaction can hold it yet).
                    self.respond(
                        id,
                        UnlockConnectorResponse {
                            status: UnlockStatus::Unlocked,
                        },
                    );
                }
            }
            Request::Reset(r) => {
                let hard = match r.kind {
                    ResetType::Hard => true,
                    ResetType::Soft => false,
                    ResetType::Unrecognized(_) => {
                        self.respond(
                            id,
                            ResetResponse {
                                status: ResetStatus::Rejected,
                            },
                        );
                        return;
                    }
                };
                self.respond(
                    id,
                    ResetResponse {
                        status: ResetStatus::Accepted,
                    },
                );
                // The answer goes out first; then the restart.
                self.drain_transmit();
                self.outputs.push(Output::Restart { hard });
            }
            other => self
                .rpc
                .respond_error(id, &CallError::not_supported(other.action().as_str())),
        }
    }

    fn live_value(&self, name: &str) -> String {
        match name {
            "OEM_NetState" => self.network.to_json(),
            // No firmware upgrade runs yet: nothing downloaded.
            "GetFirmwareUpgradePercentages" => "0".into(),
            _ => String::new(),
        }
    }

    fn change_configuration(&mut self, id: &str, key: &str, value: &str, now: Duration) {
        let change = self.config.change(key, value);
        if change.changed.is_some() {
            // Durable before the answer leaves.
            self.persist();
        }
        self.respond(
            id,
            ChangeConfigurationResponse {
                status: change.status,
            },
        );
        self.apply_change(change.changed, now);
    }

    /// A key set at the pile itself (the maintenance port, the vendor's Bluetooth app): the same
    /// rules as ChangeConfiguration, and the same effects.
    pub fn provision(&mut self, key: &str, value: &str, now: Duration) -> (Change, Vec<Output>) {
        self.now = now;
        let change = self.config.change(key, value);
        if change.changed.is_some() {
            self.persist();
        }
        self.apply_change(change.changed, now);
        self.drain_transmit();
        (change, std::mem::take(&mut self.outputs))
    }

    fn apply_change(&mut self, changed: Option<&'static str>, now: Duration) {
        match changed {
            Some("VendorWebsocketSettings" | "VendorChargePointName" | "UrlHasServerToken") => {
                // A new identity or server: connect there once the answer is out, and boot anew.
                self.target = target_of(&self.config);
                self.registration = Registration::NotBooted;
                self.trying_settings_since = Some(now);
                self.reconnect_now();
            }
            Some("HeartbeatInterval") => self.last_activity = now,
            Some("OEM_FaultMask" | "OEM_FunctionMask" | "ConnectionTimeOut")
                if self.is_accepted() && self.connected =>
            {
                self.report_statuses(now, false)
            }
            _ => {}
        }
    }

    fn reconnect_now(&mut self) {
        self.drain_transmit();
        self.connected = false;
        self.boot_call = None;
        self.next_boot = None;
        self.rpc.disconnect();
        self.next_connect = None;
        self.outputs.push(Output::Connect(self.target.clone()));
    }

    /// New server settings did not lead to an accepted boot in time: back to the last ones
    /// that worked.
    fn fall_back(&mut self, now: Duration) {
        self.trying_settings_since = None;
        let Some((settings, identity)) = self.durable.last_good.clone() else {
            return;
        };
        let current = (
            self.config
                .get("VendorWebsocketSettings")
                .unwrap_or_default()
                .to_owned(),
            self.config.identity().to_owned(),
        );
        if current == (settings.clone(), identity.clone()) {
            return;
        }
        self.config.change("VendorWebsocketSettings", &settings);
        self.config.change("VendorChargePointName", &identity);
        self.persist();
        self.target = target_of(&self.config);
        self.registration = Registration::NotBooted;
        self.last_activity = now;
        self.reconnect_now();
    }

    fn change_availability(
        &mut self,
        id: &str,
        connector: i32,
        kind: AvailabilityType,
        now: Duration,
    ) {
        let count = self.connector_count() as i32;
        let reject = |cp: &mut Self| {
            cp.respond(
                id,
                ChangeAvailabilityResponse {
                    status: AvailabilityStatus::Rejected,
                },
            )
        };
        if !(0..=count).contains(&connector) {
            return reject(self);
        }
        let connector = connector as u32;
        let targets: Vec<u32> = if connector == 0 {
            (1..=count as u32).collect()
        } else {
            vec![connector]
        };
        let before = (
            self.durable.inoperative.clone(),
            self.durable.scheduled.clone(),
        );
        let status = match kind {
            AvailabilityType::Inoperative => {
                // Preparing → Unavailable is not a transition OCPP allows: those wait.
                let preparing: Vec<u32> = targets
                    .iter()
                    .copied()
                    .filter(|c| self.status(*c) == ChargePointStatus::Preparing)
                    .collect();
                self.durable.inoperative.insert(connector);
                self.durable.scheduled.extend(preparing.iter().copied());
                if preparing.is_empty() {
                    AvailabilityStatus::Accepted
                } else {
                    AvailabilityStatus::Scheduled
                }
            }
            AvailabilityType::Operative => {
                let was_unavailable: Vec<u32> = targets
                    .iter()
                    .copied()
                    .filter(|c| self.status(*c) == ChargePointStatus::Unavailable)
                    .collect();
                self.durable.inoperative.remove(&connector);
                if connector == 0 {
                    self.durable.inoperative.clear();
                }
                // A scheduled change is cancelled once nothing keeps the connector inoperative.
                let still_inoperative = self.durable.inoperative.contains(&0);
                for c in &targets {
                    if !still_inoperative {
                        self.durable.scheduled.remove(c);
                    }
                }
                // A plug that went in while the connector was unavailable starts afresh:
                // Unavailable → Preparing (never → Finishing, which OCPP does not allow).
                for c in was_unavailable {
                    if let Some(Some(since)) = self.plugged_since.get_mut(c as usize) {
                        *since = now;
                    }
                }
                AvailabilityStatus::Accepted
            }
            AvailabilityType::Unrecognized(_) => return reject(self),
        };
        if (
            self.durable.inoperative.clone(),
            self.durable.scheduled.clone(),
        ) != before
        {
            self.persist();
        }
        self.respond(id, ChangeAvailabilityResponse { status });
        self.statuses_changed(now);
    }

    /// The connectors a MeterValues trigger covers (all for none or 0) that have a reading.
    fn metered(&self, connector: Option<i32>) -> Vec<u32> {
        let all = 1..=self.connector_count();
        all.filter(|c| connector.is_none_or(|x| x == 0 || x as u32 == *c))
            .filter(|c| self.meters[*c as usize].is_some())
            .collect()
    }

    /// A MeterValues of MeterValuesSampledData for a connector.
    fn send_meter_values(&mut self, connector: u32, context: ReadingContext, now: Duration) {
        let Some(reading) = self.meters[connector as usize].clone() else {
            return;
        };
        let previous = self.sampled_register[connector as usize].replace(reading.energy_wh);
        let interval = previous.map_or(0, |p| reading.energy_wh - p);
        let list = self
            .config
            .get("MeterValuesSampledData")
            .unwrap_or_default()
            .to_owned();
        let value = crate::meter::sample(&list, &reading, interval, context, self.clock.at(now));
        let request = MeterValuesRequest {
            connector_id: connector as i32,
            transaction_id: None,
            meter_value: vec![value],
        };
        self.call(&request, now);
    }

    fn trigger(
        &mut self,
        id: &str,
        message: MessageTrigger,
        connector: Option<i32>,
        now: Duration,
    ) {
        let count = self.connector_count() as i32;
        if connector.is_some_and(|c| !(0..=count).contains(&c)) {
            self.respond(
                id,
                TriggerMessageResponse {
                    status: TriggerMessageStatus::Rejected,
                },
            );
            return;
        }
        let status = match message {
            MessageTrigger::BootNotification
            | MessageTrigger::Heartbeat
            | MessageTrigger::StatusNotification
            | MessageTrigger::FirmwareStatusNotification
            | MessageTrigger::DiagnosticsStatusNotification => TriggerMessageStatus::Accepted,
            // Only for connectors whose meter has reported.
            MessageTrigger::MeterValues if !self.metered(connector).is_empty() => {
                TriggerMessageStatus::Accepted
            }
            MessageTrigger::MeterValues => TriggerMessageStatus::Rejected,
            MessageTrigger::Unrecognized(_) => TriggerMessageStatus::NotImplemented,
        };
        self.respond(
            id,
            TriggerMessageResponse {
                status: status.clone(),
            },
        );
        if status != TriggerMessageStatus::Accepted {
            return;
        }
        // The answer first, then the triggered message.
        match message {
            MessageTrigger::BootNotification => self.send_boot(now),
            MessageTrigger::Heartbeat => {
                self.call(&HeartbeatRequest {}, now);
            }
            // No firmware upgrade and no diagnostics upload run yet: both are Idle.
            MessageTrigger::FirmwareStatusNotification => {
                self.call(
                    &FirmwareStatusNotificationRequest {
                        status: FirmwareStatus::Idle,
                    },
                    now,
                );
            }
            MessageTrigger::MeterValues => {
                for c in self.metered(connector) {
                    self.send_meter_values(c, ReadingContext::Trigger, now);
                }
            }
            MessageTrigger::DiagnosticsStatusNotification => {
                self.call(
                    &DiagnosticsStatusNotificationRequest {
                        status: DiagnosticsStatus::Idle,
                    },
                    now,
                );
            }
            MessageTrigger::StatusNotification => match connector {
                Some(c) => self.send_status(c as u32, self.reported_now(c as u32), now),
                None => {
                    for c in 0..=self.connector_count() {
                        self.send_status(c, self.reported_now(c), now);
                    }
                }
            },
            _ => {}
        }
    }
}
