//! The security whitepaper's part of the pile (edition 2), as far as it is built: the
//! certificate stores (InstallCertificate, DeleteCertificate, GetInstalledCertificateIds),
//! ExtendedTriggerMessage, the rules of SecurityProfile and AuthorizationKey, and the security
//! events: kept in the security log and sent as SecurityEventNotification from a durable queue
//! (one at a time, under a message id that stays the same on every attempt, with the retry
//! rules of transaction messages), so that each is sent until the central system answers it,
//! across restarts.

use ocpp::{
    CertificateStatus, DeleteCertificateRequest, DeleteCertificateResponse,
    DeleteCertificateStatus, ExtendedMessageTrigger, ExtendedTriggerMessageRequest,
    ExtendedTriggerMessageResponse, GetInstalledCertificateIdsRequest,
    GetInstalledCertificateIdsResponse, GetInstalledCertificateStatus, InstallCertificateRequest,
    InstallCertificateResponse, SecurityEventNotificationRequest, Timestamp,
};

use super::*;
use crate::certificates::{self, Store};
use crate::config::Key;
use crate::durable::SecurityEvent;

/// The central system moving the pile's clock by more than this is a SettingSystemTime event
/// (smaller corrections are the usual drift).
pub const CLOCK_STEP_EVENT: Duration = Duration::from_secs(900);

/// The SecurityEventNotification on its way, and when to try again after a failure.
#[derive(Debug, Clone, Default)]
pub(super) struct SecurityRun {
    call: Option<Ticket>,
    retry_at: Option<Duration>,
    /// A refused handshake was reported since the last connection (or the start).
    refusal_reported: bool,
}

impl SecurityRun {
    /// The connection is gone, and the notification on its way with it (it is sent again).
    pub fn forget_call(&mut self) {
        self.call = None;
    }

    /// A connection is up: the next refused handshake is news again.
    pub fn connected(&mut self) {
        self.refusal_reported = false;
    }

    /// When the notification that failed is tried again.
    pub fn retry_at(&self) -> Option<Duration> {
        self.retry_at
    }
}

/// The security events (whitepaper, appendix 1) the core sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    StartupOfTheDevice,
    ResetOrReboot,
    /// Not critical in the whitepaper's table; sent (once the pile is in again) since it is
    /// raised once per run of refused attempts.
    FailedToAuthenticateAtCentralSystem,
    SettingSystemTime,
    FirmwareUpdated,
    /// Not critical in the whitepaper's table; sent all the same, since a change of the
    /// pile's credentials or profile is what an operator wants to see.
    ReconfigurationOfSecurityParameters,
    /// A CertificateSigned chain that did not check.
    InvalidChargePointCertificate,
    /// A SignedUpdateFirmware image whose signature did not verify.
    InvalidFirmwareSignature,
    /// A SignedUpdateFirmware signing certificate that did not check.
    InvalidFirmwareSigningCertificate,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::StartupOfTheDevice => "StartupOfTheDevice",
            Event::ResetOrReboot => "ResetOrReboot",
            Event::FailedToAuthenticateAtCentralSystem => "FailedToAuthenticateAtCentralSystem",
            Event::SettingSystemTime => "SettingSystemTime",
            Event::FirmwareUpdated => "FirmwareUpdated",
            Event::ReconfigurationOfSecurityParameters => "ReconfigurationOfSecurityParameters",
            Event::InvalidChargePointCertificate => "InvalidChargePointCertificate",
            Event::InvalidFirmwareSignature => "InvalidFirmwareSignature",
            Event::InvalidFirmwareSigningCertificate => "InvalidFirmwareSigningCertificate",
        }
    }
}

impl ChargePoint {
    /// The security log, oldest first (for GetLog, later).
    pub fn security_log(&self) -> &std::collections::VecDeque<SecurityEvent> {
        self.durable.security_log()
    }

    /// SecurityEventNotifications waiting for the central system.
    pub fn security_queue_len(&self) -> usize {
        self.durable.security_events().len()
    }

    /// A security event: into the log, and queued for the central system (durable; sent
    /// once the pile can).
    pub(super) fn raise(&mut self, event: Event, tech_info: String, now: Duration) {
        self.record_event(event, tech_info, now);
        self.persist();
    }

    /// A security event into the log and the queue, made durable with the next
    /// [`Output::Persist`].
    pub(super) fn record_event(&mut self, event: Event, tech_info: String, now: Duration) {
        let event = SecurityEvent {
            kind: event.name().to_owned(),
            timestamp: self.time.clock.at(now),
            tech_info: Some(tech_info),
        };
        if let Some(dropped) = self.durable.record_security_event(event, true) {
            self.link.outputs.push(Output::Log(format!(
                "security event {} ({}) not sent: too many waiting",
                dropped.message_id, dropped.event.kind
            )));
        }
    }

    /// The central system tells the time: the clock follows, and a large step is a
    /// SettingSystemTime event.
    pub(super) fn set_clock(&mut self, wall: Timestamp, now: Duration) {
        let before = self.time.clock.at(now).millis();
        self.time.clock.sync(wall, now);
        let step_ms = wall.millis() - before;
        if step_ms.unsigned_abs() > CLOCK_STEP_EVENT.as_millis() as u64 {
            let info = format!("the central system moved the clock by {} s", step_ms / 1000);
            self.raise(Event::SettingSystemTime, info, now);
        }
    }

    /// Sends the oldest SecurityEventNotification when the central can take it.
    pub(super) fn pump_security(&mut self, now: Duration) {
        if self.security.retry_at.is_some_and(|t| now >= t) {
            self.security.retry_at = None;
        }
        // Not while a reset or the new firmware's restart is under way: the events wait for
        // the restarted pile (FirmwareUpdated then comes from the new firmware).
        let installed = self
            .durable
            .firmware_update()
            .is_some_and(|f| f.stage == crate::durable::FirmwareStage::Installed);
        if self.reset.pending()
            || installed
            || !self.session.online()
            || self.security.call.is_some()
            || self.security.retry_at.is_some()
        {
            return;
        }
        let Some(front) = self.durable.security_events().front() else {
            return;
        };
        let request = SecurityEventNotificationRequest {
            kind: CiString50::truncating(&front.event.kind),
            timestamp: front.event.timestamp,
            tech_info: front
                .event
                .tech_info
                .as_deref()
                .map(CiString255::truncating),
        };
        let message_id = front.message_id.clone();
        let ticket = self.link.rpc.call_with_id(&request, &message_id, now);
        self.session.activity(now);
        self.security.call = Some(ticket);
        self.link.awaited.insert(ticket, Awaited::SecurityEvent);
    }

    /// The central answered (or did not answer) the oldest SecurityEventNotification.
    pub(super) fn on_security_reply(
        &mut self,
        outcome: Result<Decoded<Response>, CallFailure>,
        now: Duration,
    ) {
        self.security.call = None;
        let retry = self
            .config
            .int(keys::TRANSACTION_MESSAGE_RETRY_INTERVAL)
            .max(1) as u64;
        match outcome {
            Ok(_) => {
                self.durable.dequeue_security_event();
                self.persist();
            }
            Err(CallFailure::CallError(_) | CallFailure::BadResponse(_)) => {
                // The rules of transaction messages: again after TransactionMessageRetryInterval
                // times the failures so far, up to TransactionMessageAttempts.
                let attempts = self.config.int(keys::TRANSACTION_MESSAGE_ATTEMPTS).max(1) as u32;
                if let Some(failures) = self.durable.count_security_failure() {
                    if failures >= attempts {
                        if let Some(dropped) = self.durable.dequeue_security_event() {
                            self.link.outputs.push(Output::Log(format!(
                                "security event {} dropped after {failures} failures",
                                dropped.message_id
                            )));
                        }
                    } else {
                        self.security.retry_at =
                            Some(now + Duration::from_secs(retry * u64::from(failures)));
                    }
                    self.persist();
                }
            }
            Err(CallFailure::Timeout) => {
                self.security.retry_at = Some(now + Duration::from_secs(retry))
            }
            Err(CallFailure::Disconnected) => {}
        }
        self.pump_security(now);
    }

    /// Why a ChangeConfiguration (or a setting at the pile) that touches the security profile's
    /// needs is refused, if it is: SecurityProfile is never lowered, and a profile is only
    /// taken (or kept through a change of the password or the server settings) when what it
    /// needs is there. Profile 1 needs a Basic password (AuthorizationKey or the settings'
    /// password); 2 also needs TLS (WSS settings) and a CentralSystemRootCertificate; 3 needs
    /// a client certificate (CertificateSigned). A profile raised is taken with a new
    /// connection (and given up for the last accepted one if that reaches no accepted boot:
    /// [`ChargePoint::fall_back`]).
    pub(super) fn security_refusal(&self, key: &str, value: &str) -> Option<String> {
        let name = crate::config::spec(key)?.name;
        let watched = [
            keys::SECURITY_PROFILE.name(),
            keys::AUTHORIZATION_KEY.name(),
            keys::VENDOR_WEBSOCKET_SETTINGS.name(),
        ];
        if !watched.contains(&name) {
            return None;
        }
        let mut after = self.config.clone();
        // Refused as any other value, or no change: nothing to check.
        after.change(key, value).changed?;
        let (was, profile) = (
            self.config.int(keys::SECURITY_PROFILE),
            after.int(keys::SECURITY_PROFILE),
        );
        if profile < was {
            return Some(format!(
                "SecurityProfile {was} can only be raised, not set to {profile}"
            ));
        }
        let settings = after.websocket_settings();
        let password =
            !after.text(keys::AUTHORIZATION_KEY).is_empty() || !settings.password.is_empty();
        if profile >= 1 && !password {
            return Some(format!(
                "security profile {profile} needs a Basic password (AuthorizationKey)"
            ));
        }
        if profile >= 2 && !settings.secure {
            return Some(format!(
                "security profile {profile} needs TLS (WSS server settings)"
            ));
        }
        if profile >= 2 && !self.has_root(Store::CentralSystemRoot) {
            return Some(format!(
                "security profile {profile} needs a CentralSystemRootCertificate"
            ));
        }
        if profile >= 3 && self.durable.client_certificate().is_none() {
            return Some(
                "security profile 3 needs a client certificate (SignCertificate, CertificateSigned)"
                    .into(),
            );
        }
        None
    }

    /// A key of the security profile changed: a security event (never with the key's value).
    pub(super) fn security_reconfigured(&mut self, key: &'static str, now: Duration) {
        let info = if key == keys::SECURITY_PROFILE.name() {
            format!(
                "SecurityProfile set to {}",
                self.config.int(keys::SECURITY_PROFILE)
            )
        } else if key == keys::AUTHORIZATION_KEY.name() {
            "AuthorizationKey changed".to_owned()
        } else {
            return;
        };
        self.raise(Event::ReconfigurationOfSecurityParameters, info, now);
    }

    /// The central refused the handshake: a 401 or 403 is a security event, the first of a
    /// run of failed attempts (a pile retrying with the same credentials does not fill the
    /// log).
    pub(super) fn refused(&mut self, status: u16, now: Duration) {
        if matches!(status, 401 | 403) && !self.security.refusal_reported {
            self.security.refusal_reported = true;
            let info = format!(
                "the central system refused the connection with HTTP {status} as {}",
                self.config.identity()
            );
            self.raise(Event::FailedToAuthenticateAtCentralSystem, info, now);
        }
    }

    /// A Reset was accepted: a security event.
    pub(super) fn reset_event(&mut self, hard: bool, now: Duration) {
        let kind = if hard { "Hard" } else { "Soft" };
        self.raise(
            Event::ResetOrReboot,
            format!("{kind} reset by the central system"),
            now,
        );
    }

    /// The pile starts: a security event (durable with the start's own Persist).
    pub(super) fn startup_event(&mut self, now: Duration) {
        let info = format!("start {} of the pile", self.durable.boots());
        self.record_event(Event::StartupOfTheDevice, info, now);
    }

    /// New firmware was installed: a security event.
    pub(super) fn firmware_updated_event(&mut self, version: &str, now: Duration) {
        let info = format!("firmware {version} installed");
        self.raise(Event::FirmwareUpdated, info, now);
    }

    fn has_root(&self, store: Store) -> bool {
        self.durable.certificates().iter().any(|c| c.store == store)
    }

    /// InstallCertificate: root certificates only (self-signed CA, valid now), as long as the
    /// stores hold fewer than CertificateStoreMaxLength; anything else is Rejected (the
    /// whitepaper's meaning of Rejected: invalid or incorrect, or one too many).
    pub(super) fn install_certificate(
        &mut self,
        id: &str,
        r: InstallCertificateRequest,
        now: Duration,
    ) {
        let at = self.time.clock.at(now).millis() / 1000;
        let max = self.config.int(keys::CERTIFICATE_STORE_MAX_LENGTH).max(0) as usize;
        let outcome = match Store::of(&r.certificate_type) {
            None => Err(format!(
                "unknown certificateType {}",
                r.certificate_type.as_str()
            )),
            Some(store) => certificates::read_root(r.certificate.as_str(), at)
                .map_err(|e| e.to_string())
                .map(|der| certificates::Installed { store, der }),
        };
        let outcome = outcome.and_then(|installed| {
            let known = self.durable.certificates().contains(&installed);
            if !known && self.durable.certificates().len() >= max {
                Err(format!(
                    "the certificate stores hold {max} certificates already"
                ))
            } else {
                Ok(installed)
            }
        });
        let status = match outcome {
            Ok(installed) => {
                if self.durable.install_certificate(installed) {
                    self.persist();
                }
                CertificateStatus::Accepted
            }
            Err(why) => {
                self.link
                    .outputs
                    .push(Output::Log(format!("InstallCertificate rejected: {why}")));
                CertificateStatus::Rejected
            }
        };
        self.respond(id, InstallCertificateResponse { status });
    }

    /// DeleteCertificate: the certificate the hashes name, from whichever store holds it. The
    /// last CentralSystemRootCertificate stays while security profile 2 or 3 needs it (Failed).
    pub(super) fn delete_certificate(&mut self, id: &str, r: DeleteCertificateRequest) {
        let found = self.durable.certificates().iter().position(|c| {
            c.hash_data()
                .is_some_and(|h| h.matches(&r.certificate_hash_data))
        });
        let status = match found {
            None => DeleteCertificateStatus::NotFound,
            Some(index) => {
                let store = self.durable.certificates()[index].store;
                let roots = self
                    .durable
                    .certificates()
                    .iter()
                    .filter(|c| c.store == Store::CentralSystemRoot)
                    .count();
                if store == Store::CentralSystemRoot
                    && roots == 1
                    && self.config.int(keys::SECURITY_PROFILE) >= 2
                {
                    DeleteCertificateStatus::Failed
                } else {
                    self.durable.remove_certificate(index);
                    self.persist();
                    DeleteCertificateStatus::Accepted
                }
            }
        };
        self.respond(id, DeleteCertificateResponse { status });
    }

    /// GetInstalledCertificateIds: the hashes of every certificate of a store, NotFound when
    /// it holds none.
    pub(super) fn get_installed_certificate_ids(
        &mut self,
        id: &str,
        r: GetInstalledCertificateIdsRequest,
    ) {
        let store = Store::of(&r.certificate_type);
        let hashes: Vec<_> = self
            .durable
            .certificates()
            .iter()
            .filter(|c| Some(c.store) == store)
            .filter_map(|c| c.hash_data())
            .map(|h| h.to_ocpp())
            .collect();
        let response = if hashes.is_empty() {
            GetInstalledCertificateIdsResponse {
                certificate_hash_data: None,
                status: GetInstalledCertificateStatus::NotFound,
            }
        } else {
            GetInstalledCertificateIdsResponse {
                certificate_hash_data: Some(hashes),
                status: GetInstalledCertificateStatus::Accepted,
            }
        };
        self.respond(id, response);
    }

    /// ExtendedTriggerMessage: the messages TriggerMessage knows are triggered as it does;
    /// LogStatusNotification reports the GetLog upload under way (Idle when none runs);
    /// SignChargePointCertificate makes a new key pair and sends SignCertificate with its CSR
    /// (Rejected if no key could be made).
    pub(super) fn extended_trigger(
        &mut self,
        id: &str,
        r: ExtendedTriggerMessageRequest,
        now: Duration,
    ) {
        let shared = match &r.requested_message {
            ExtendedMessageTrigger::BootNotification => Some(MessageTrigger::BootNotification),
            ExtendedMessageTrigger::Heartbeat => Some(MessageTrigger::Heartbeat),
            ExtendedMessageTrigger::MeterValues => Some(MessageTrigger::MeterValues),
            ExtendedMessageTrigger::StatusNotification => Some(MessageTrigger::StatusNotification),
            ExtendedMessageTrigger::FirmwareStatusNotification => {
                Some(MessageTrigger::FirmwareStatusNotification)
            }
            _ => None,
        };
        let log_status = r.requested_message == ExtendedMessageTrigger::LogStatusNotification;
        let sign = r.requested_message == ExtendedMessageTrigger::SignChargePointCertificate;
        let mut csr = None;
        let status = match &shared {
            Some(message) => self.trigger_status(message, r.connector_id),
            None if !self.trigger_connector_ok(r.connector_id) => TriggerMessageStatus::Rejected,
            None if log_status => TriggerMessageStatus::Accepted,
            None if sign => {
                csr = self.new_csr();
                if csr.is_some() {
                    TriggerMessageStatus::Accepted
                } else {
                    TriggerMessageStatus::Rejected
                }
            }
            None => TriggerMessageStatus::NotImplemented,
        };
        self.respond(
            id,
            ExtendedTriggerMessageResponse {
                status: status.clone(),
            },
        );
        if status != TriggerMessageStatus::Accepted {
            return;
        }
        // The answer first, then the triggered message.
        match (shared, csr) {
            // The whitepaper's FirmwareStatusNotification is the signed one: sent as such
            // while a SignedUpdateFirmware runs (its status as TriggerMessage reports it).
            (Some(MessageTrigger::FirmwareStatusNotification), _)
                if self.signed_request_id().is_some() =>
            {
                self.send_signed_firmware_status(now)
            }
            (Some(message), _) => self.send_triggered(message, r.connector_id, now),
            (None, Some(csr)) => self.send_sign_certificate(&csr, now),
            (None, None) => self.send_log_status(now),
        }
    }
}
