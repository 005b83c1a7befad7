//! Connection and registration: connecting with backoff, BootNotification and its answers,
//! heartbeats, new server settings and the fallback from them.

use super::*;

/// The connection to the central system and the boot: where the pile connects, whether the
/// link is up, the registration the central gave, the BootNotification on its way and when the
/// next one or the next connection attempt is due, the failures counted for the back-off, and
/// since when unproven server settings are in force (for the fallback).
#[derive(Debug, Clone)]
pub(super) struct Session {
    connected: bool,
    target: Target,
    registration: Registration,
    boot_call: Option<Ticket>,
    next_boot: Option<Duration>,
    next_connect: Option<Duration>,
    failures: u32,
    last_activity: Duration,
    trying_settings_since: Option<Duration>,
    /// New server settings wait for the answer to the CALL in flight on the old connection,
    /// until this instant at the latest.
    moving_by: Option<Duration>,
    jitter: u64,
}

impl Session {
    pub fn new(target: Target, now: Duration, jitter: u64) -> Session {
        Session {
            connected: false,
            target,
            registration: Registration::NotBooted,
            boot_call: None,
            next_boot: None,
            next_connect: None,
            failures: 0,
            last_activity: now,
            trying_settings_since: None,
            moving_by: None,
            jitter,
        }
    }

    /// Connected and accepted: what may be sent, may go.
    pub fn online(&self) -> bool {
        self.connected && self.registration == Registration::Accepted
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    pub fn is_accepted(&self) -> bool {
        self.registration == Registration::Accepted
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Something was exchanged with the central now (the heartbeat's clock starts again).
    pub fn activity(&mut self, now: Duration) {
        self.last_activity = now;
    }

    pub fn last_activity(&self) -> Duration {
        self.last_activity
    }

    /// New server settings: connect there, boot again, and fall back unless they prove good.
    pub fn move_to(&mut self, target: Target, now: Duration) {
        self.target = target;
        self.registration = Registration::NotBooted;
        self.trying_settings_since = Some(now);
    }

    pub fn trying_settings_since(&self) -> Option<Duration> {
        self.trying_settings_since
    }

    /// When the next boot, connection attempt or move is due.
    pub fn deadlines(&self) -> [Option<Duration>; 3] {
        [self.next_boot, self.next_connect, self.moving_by]
    }
}

impl ChargePoint {
    pub(super) fn on_connected(&mut self, now: Duration) {
        // A new connection: whatever was in flight on an earlier one is gone.
        self.forget_calls();
        self.session.connected = true;
        self.session.failures = 0;
        self.security.connected();
        self.session.next_connect = None;
        self.session.last_activity = now;
        match self.session.registration {
            Registration::Accepted => {
                self.report_statuses(now, false);
                self.pump_outbox(now);
            }
            _ => self.send_boot(now),
        }
        // An Authorize.req lost with the old connection is decided as if offline.
        if let Some(pending) = self.authorization.take_pending() {
            self.on_authorize_reply(pending, Err(CallFailure::Disconnected), now);
        }
    }

    pub(super) fn on_disconnected(&mut self, now: Duration) {
        if self.firmware_run.connection_lost() {
            // Installed could not be confirmed: the new firmware starts anyway.
            return self.restart_after_upgrade();
        }
        self.drop_connection();
        if let Some(pending) = self.authorization.take_pending() {
            self.on_authorize_reply(pending, Err(CallFailure::Disconnected), now);
        }
        // Exponential backoff with jitter.
        let exp = self
            .settings
            .options
            .backoff_min
            .saturating_mul(1 << self.session.failures.min(16))
            .min(self.settings.options.backoff_max);
        self.session.failures = self.session.failures.saturating_add(1);
        self.session.jitter ^= self.session.jitter << 13;
        self.session.jitter ^= self.session.jitter >> 7;
        self.session.jitter ^= self.session.jitter << 17;
        let spread = exp.as_millis() as u64 / 4;
        let jitter = if spread == 0 {
            0
        } else {
            self.session.jitter % (spread + 1)
        };
        self.session.next_connect = Some(now + exp + Duration::from_millis(jitter));
    }

    pub(super) fn on_tick(&mut self, now: Duration) {
        self.lapse_authorizations(now);
        self.expire_reservations(now);
        self.statuses_changed(now);
        while let Some(inbound) = self.link.rpc.poll_timeout(now) {
            self.on_inbound(inbound, now);
        }
        self.sample_transactions(now);
        self.firmware_tick(now);
        self.diagnostics_tick(now);
        if self.metering.next_aligned.is_some_and(|t| now >= t) {
            self.sample_aligned(now);
            self.metering.next_aligned = self.next_aligned_after(now);
        }
        self.pump_outbox(now);
        if self.session.moving_by.is_some_and(|t| now >= t) {
            self.reconnect_now();
        }
        if self.session.next_connect.is_some_and(|t| now >= t) {
            self.session.next_connect = None;
            self.link
                .outputs
                .push(Output::Connect(self.session.target.clone()));
        }
        if self.session.connected && self.session.next_boot.is_some_and(|t| now >= t) {
            self.send_boot(now);
        }
        if self.session.connected
            && self.is_accepted()
            && self.heartbeat_interval() > Duration::ZERO
            && now >= self.session.last_activity + self.heartbeat_interval()
        {
            self.call(&HeartbeatRequest {}, now);
        }
        if let (Some(since), Some(after)) = (
            self.session.trying_settings_since,
            self.settings.options.settings_fallback,
        ) {
            if now >= since + after {
                self.fall_back(now);
            }
        }
    }

    pub(super) fn boot_request(&self) -> BootNotificationRequest {
        let c20 = CiString20::truncating;
        let c25 = CiString25::truncating;
        let serial = &self.config.factory().serial_number;
        BootNotificationRequest {
            charge_point_vendor: c20(&self.settings.identity.vendor),
            charge_point_model: c20(&self.settings.identity.model),
            // The original serial number, whatever VendorChargePointName says (FAQ 3.2.2).
            charge_point_serial_number: Some(c25(serial)),
            charge_box_serial_number: Some(c25(serial)),
            firmware_version: Some(CiString50::truncating(self.firmware_version())),
            // ICCID and IMSI only when connected through 4G alone (FAQ 3.9).
            iccid: (self.hardware.network.connectivity == "4G"
                && !self.hardware.network.iccid.is_empty())
            .then(|| c20(&self.hardware.network.iccid)),
            imsi: (self.hardware.network.connectivity == "4G"
                && !self.hardware.network.imsi.is_empty())
            .then(|| c20(&self.hardware.network.imsi)),
            meter_type: self.settings.identity.meter_type.as_deref().map(c25),
            meter_serial_number: self
                .settings
                .identity
                .meter_serial_number
                .as_deref()
                .map(c25),
        }
    }

    pub(super) fn send_boot(&mut self, now: Duration) {
        self.session.next_boot = None;
        let request = self.boot_request();
        let ticket = self.call(&request, now);
        self.session.boot_call = Some(ticket);
        self.link.awaited.insert(ticket, Awaited::Boot);
    }

    pub(super) fn on_reply(
        &mut self,
        ticket: Ticket,
        _action: Action,
        outcome: Result<Decoded<Response>, CallFailure>,
        now: Duration,
    ) {
        if self.session.moving_by.is_some() {
            // The answer the move waited for: the old server's word on a boot no longer
            // counts; anything else is taken as usual. Then off to the new server.
            if matches!(self.link.awaited.get(&ticket), Some(Awaited::Boot)) {
                self.link.awaited.remove(&ticket);
            } else {
                self.on_answer(ticket, outcome, now);
            }
            return self.reconnect_now();
        }
        self.on_answer(ticket, outcome, now);
    }

    fn on_answer(
        &mut self,
        ticket: Ticket,
        outcome: Result<Decoded<Response>, CallFailure>,
        now: Duration,
    ) {
        match self.link.awaited.remove(&ticket) {
            Some(Awaited::Outbox) => return self.on_outbox_reply(outcome, now),
            Some(Awaited::Authorize) => {
                if let Some(pending) = self.authorization.take_pending() {
                    return self.on_authorize_reply(pending, outcome, now);
                }
                return;
            }
            Some(Awaited::Firmware) => {
                let answered = !matches!(outcome, Err(CallFailure::Timeout));
                return self.on_firmware_reply(ticket, answered);
            }
            Some(Awaited::Boot) => return self.on_boot_reply(outcome, now),
            Some(Awaited::SecurityEvent) => return self.on_security_reply(outcome, now),
            Some(Awaited::SignCertificate) => return self.on_sign_certificate_reply(outcome),
            None => {}
        }
        if let Ok(Decoded {
            value: Response::Heartbeat(h),
            ..
        }) = outcome
        {
            self.set_clock(h.current_time, now);
        }
    }

    fn on_boot_reply(&mut self, outcome: Result<Decoded<Response>, CallFailure>, now: Duration) {
        self.session.boot_call = None;
        let Ok(Decoded {
            value: Response::BootNotification(r),
            ..
        }) = outcome
        else {
            self.session.next_boot = Some(now + BOOT_RETRY);
            return;
        };
        self.set_clock(r.current_time, now);
        let interval = Duration::from_secs(r.interval.max(0) as u64);
        let registration = match r.status {
            RegistrationStatus::Accepted => return self.on_accepted(r.interval, now),
            RegistrationStatus::Pending => Registration::Pending,
            _ => Registration::Rejected,
        };
        self.session.registration = registration;
        let retry = if interval.is_zero() {
            BOOT_RETRY
        } else {
            interval
        };
        self.session.next_boot = Some(now + retry);
    }

    pub(super) fn on_accepted(&mut self, interval: i32, now: Duration) {
        self.session.registration = Registration::Accepted;
        if interval > 0 && self.config.int(keys::HEARTBEAT_INTERVAL) != i64::from(interval) {
            // The central's interval becomes the heartbeat interval, where it is in range.
            if self
                .config
                .set(keys::HEARTBEAT_INTERVAL, &interval.to_string())
                .changed
                .is_some()
            {
                self.persist();
            }
        }
        let settings = self.config.text(keys::VENDOR_WEBSOCKET_SETTINGS).to_owned();
        let identity = self.config.identity().to_owned();
        self.session.trying_settings_since = None;
        let profile = self.config.int(keys::SECURITY_PROFILE);
        let news = self.durable.remember_good_settings(settings, identity);
        if self.durable.remember_good_profile(profile) || news {
            self.persist();
        }
        // ERR 3.22: connector 0 and every connector, after an accepted boot.
        self.report_statuses(now, true);
        // Then what waited in the outbox, in order.
        self.pump_outbox(now);
    }

    /// The CALLs in flight are gone with their connection: none will be answered.
    fn forget_calls(&mut self) {
        self.link.rpc.disconnect();
        self.link.awaited.clear();
        self.session.boot_call = None;
        self.outbox.forget_call();
        self.security.forget_call();
    }

    /// New server settings: the move waits for the answer to a CALL in flight, so that a
    /// central system busy answering it does not find the connection closed (and miss the
    /// answer to the ChangeConfiguration that was sent before), but not beyond `MOVE_WAIT`.
    pub(super) fn move_soon(&mut self, now: Duration) {
        if self.session.connected && self.link.rpc.outstanding().is_some() {
            self.drain_transmit();
            self.session.moving_by = Some(now + MOVE_WAIT);
        } else {
            self.reconnect_now();
        }
    }

    /// The connection is gone: no CALL in flight, no BootNotification planned on it.
    fn drop_connection(&mut self) {
        self.session.moving_by = None;
        self.forget_calls();
        self.session.connected = false;
        self.session.next_boot = None;
    }

    pub(super) fn reconnect_now(&mut self) {
        self.drain_transmit();
        self.drop_connection();
        self.session.next_connect = None;
        self.link
            .outputs
            .push(Output::Connect(self.session.target.clone()));
    }

    /// New server settings did not lead to an accepted boot in time: back to the last ones
    /// that worked.
    pub(super) fn fall_back(&mut self, now: Duration) {
        self.session.trying_settings_since = None;
        // A raised SecurityProfile that reached no accepted boot goes back to the profile of
        // the last accepted one (the whitepaper's rule), with a security event.
        let profile = self.config.int(keys::SECURITY_PROFILE);
        let profile_back = self.durable.good_profile().filter(|good| *good < profile);
        if let Some(good) = profile_back {
            self.config.set(keys::SECURITY_PROFILE, &good.to_string());
            let info =
                format!("SecurityProfile {profile} reached no accepted boot: back to {good}");
            self.link.outputs.push(Output::Log(info.clone()));
            self.record_event(
                security::Event::ReconfigurationOfSecurityParameters,
                info,
                now,
            );
        }
        let good = self.durable.last_good_settings().cloned();
        let current = (
            self.config.text(keys::VENDOR_WEBSOCKET_SETTINGS).to_owned(),
            self.config.identity().to_owned(),
        );
        let settings_back = match good {
            Some(good) if good != current => {
                let (settings, identity) = good;
                if let Some(why) =
                    self.security_refusal(keys::VENDOR_WEBSOCKET_SETTINGS.0, &settings)
                {
                    self.link.outputs.push(Output::Log(format!(
                        "no accepted boot with the new server settings, and no fall back to {settings}: {why}"
                    )));
                    false
                } else {
                    self.link.outputs.push(Output::Log(format!(
                        "no accepted boot with the new server settings: back to {settings} as {identity}"
                    )));
                    self.config.set(keys::VENDOR_WEBSOCKET_SETTINGS, &settings);
                    self.config.set(keys::VENDOR_CHARGE_POINT_NAME, &identity);
                    true
                }
            }
            _ => false,
        };
        if !settings_back && profile_back.is_none() {
            return;
        }
        self.persist();
        self.session.target = target_of(&self.config, &self.durable);
        self.session.registration = Registration::NotBooted;
        self.session.last_activity = now;
        self.reconnect_now();
    }

    pub(super) fn heartbeat_interval(&self) -> Duration {
        self.config.seconds(keys::HEARTBEAT_INTERVAL)
    }
}
