//! The central system's commands: configuration, triggers, reset, unlock, data transfer.

use ocpp::{
    ClearCacheResponse, ClearCacheStatus, RemoteStartStopStatus, RemoteStartTransactionRequest,
    RemoteStartTransactionResponse, RemoteStopTransactionResponse, StopReason,
};

use super::authorization::Purpose;
use super::*;

/// A reset under way: nothing more is sent while `restarting`; `waiting` holds the kind (hard
/// or soft) and the time until which the answers to its StopTransactions are awaited.
#[derive(Debug, Clone, Default)]
pub(super) struct ResetRun {
    restarting: bool,
    waiting: Option<(bool, Duration)>,
}

impl ResetRun {
    /// A restart is under way: nothing more is sent.
    pub fn restarting(&self) -> bool {
        self.restarting
    }

    /// A reset is accepted and not yet done: no transaction starts.
    pub fn pending(&self) -> bool {
        self.restarting || self.waiting.is_some()
    }

    /// The pile restarts now.
    pub fn restart(&mut self) {
        self.waiting = None;
        self.restarting = true;
    }

    /// Until when the reset waits for its StopTransactions' answers.
    pub fn deadline(&self) -> Option<Duration> {
        self.waiting.map(|(_, until)| until)
    }
}

impl ChargePoint {
    pub(super) fn on_call(&mut self, id: &str, request: Decoded<Request>, now: Duration) {
        match request.value {
            Request::GetConfiguration(r) => {
                let live = |which| self.live_value(which);
                match self.config.get_configuration(r.key.as_deref(), &live) {
                    Ok(answer) => self.respond(id, answer),
                    Err(e) => self.link.rpc.respond_error(id, &e),
                }
            }
            Request::ChangeConfiguration(r) => self.change_configuration(id, &r.key, &r.value, now),
            Request::ChangeAvailability(r) => {
                self.change_availability(id, r.connector_id, r.kind, now)
            }
            Request::DataTransfer(r) => {
                let status = if r.vendor_id.eq_ignore_case(&self.settings.identity.vendor) {
                    DataTransferStatus::UnknownMessageId
                } else {
                    DataTransferStatus::UnknownVendorId
                };
                self.respond(id, DataTransferResponse { status, data: None });
            }
            Request::TriggerMessage(r) => {
                self.trigger(id, r.requested_message, r.connector_id, now)
            }
            Request::ExtendedTriggerMessage(r) => self.extended_trigger(id, r, now),
            Request::InstallCertificate(r) => self.install_certificate(id, r, now),
            Request::CertificateSigned(r) => self.certificate_signed(id, r, now),
            Request::DeleteCertificate(r) => self.delete_certificate(id, r),
            Request::GetInstalledCertificateIds(r) => self.get_installed_certificate_ids(id, r),
            Request::UnlockConnector(r) => {
                if r.connector_id < 1 || r.connector_id > self.connector_count() as i32 {
                    // No such connector: nothing to unlock (what the OCA's test tool expects).
                    self.respond(
                        id,
                        UnlockConnectorResponse {
                            status: UnlockStatus::NotSupported,
                        },
                    );
                } else {
                    // A transaction on the connector stops first; then the lock opens, unless
                    // it is stuck.
                    let connector = r.connector_id as u32;
                    self.stop_transaction(connector, StopReason::UnlockCommand, None, now);
                    let status = if self.hardware.faults.contains(&Fault::LockStuck) {
                        UnlockStatus::UnlockFailed
                    } else {
                        self.link
                            .outputs
                            .push(Output::Hardware(HardwareCommand::Unlock { connector }));
                        UnlockStatus::Unlocked
                    };
                    self.respond(id, UnlockConnectorResponse { status });
                }
            }
            Request::RemoteStartTransaction(r) => self.remote_start(id, r, now),
            Request::RemoteStopTransaction(r) => {
                let running = self
                    .durable
                    .transactions()
                    .keys()
                    .copied()
                    .find(|c| self.transaction_id(*c) == Some(r.transaction_id));
                let status = if running.is_some() {
                    RemoteStartStopStatus::Accepted
                } else {
                    RemoteStartStopStatus::Rejected
                };
                self.respond(id, RemoteStopTransactionResponse { status });
                if let Some(c) = running {
                    self.stop_transaction(c, StopReason::Remote, None, now);
                }
            }
            Request::SendLocalList(r) => self.send_local_list(id, r),
            Request::ReserveNow(r) => self.reserve_now(id, r, now),
            Request::SetChargingProfile(r) => self.set_charging_profile(id, r),
            Request::ClearChargingProfile(r) => self.clear_charging_profile(id, r),
            Request::GetCompositeSchedule(r) => self.get_composite_schedule(id, r, now),
            Request::CancelReservation(r) => self.cancel_reservation(id, r, now),
            Request::GetLocalListVersion(_) => self.get_local_list_version(id),
            Request::UpdateFirmware(r) => self.update_firmware(id, r, now),
            Request::SignedUpdateFirmware(r) => self.signed_update_firmware(id, r, now),
            Request::GetDiagnostics(r) => self.get_diagnostics(id, r, now),
            Request::GetLog(r) => self.get_log(id, r, now),
            Request::ClearCache(_) => {
                self.clear_auth_cache();
                self.respond(
                    id,
                    ClearCacheResponse {
                        status: ClearCacheStatus::Accepted,
                    },
                );
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
                // The answer goes out first; then the transactions stop, and the restart
                // waits (for a bounded time) until the central has answered their
                // StopTransactions (OCPP 1.6 5.13). Offline, the messages wait in the outbox
                // for the restarted pile.
                self.drain_transmit();
                let reason = if hard {
                    StopReason::HardReset
                } else {
                    StopReason::SoftReset
                };
                self.reset_event(hard, now);
                let running: Vec<u32> = self.running_connectors();
                for c in running {
                    self.stop_transaction(c, reason.clone(), None, now);
                }
                self.reset.waiting = Some((hard, now + RESET_STOP_WAIT));
                self.pump_outbox(now);
            }
            other => self
                .link
                .rpc
                .respond_error(id, &CallError::not_supported(other.action().as_str())),
        }
    }

    /// The broker DBGEnableInsight names, if any.
    pub(super) fn insight_target(&self) -> Option<(String, u16)> {
        crate::config::parse_insight(self.config.text(keys::DBG_ENABLE_INSIGHT))
            .ok()
            .flatten()
    }

    pub(super) fn live_value(&self, which: crate::config::Live) -> String {
        match which {
            crate::config::Live::NetState => self.hardware.network.to_json(),
            crate::config::Live::FirmwarePercent => self.firmware_percent().to_string(),
        }
    }

    /// ChangeConfiguration's rules, with those of the security profile
    /// ([`ChargePoint::security_refusal`]).
    fn change_key(&mut self, key: &str, value: &str) -> Change {
        match self.security_refusal(key, value) {
            Some(reason) => {
                self.link.outputs.push(Output::Log(format!(
                    "configuration change refused: {reason}"
                )));
                Change {
                    status: ocpp::ConfigurationStatus::Rejected,
                    changed: None,
                    reason: Some(reason),
                }
            }
            None => self.config.change(key, value),
        }
    }

    pub(super) fn change_configuration(&mut self, id: &str, key: &str, value: &str, now: Duration) {
        let change = self.change_key(key, value);
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
        self.time.now = now;
        let change = self.change_key(key, value);
        if change.changed.is_some() {
            self.persist();
        }
        self.apply_change(change.changed, now);
        self.start_what_can_start(now);
        self.drive();
        self.drain_transmit();
        (change, std::mem::take(&mut self.link.outputs))
    }

    pub(super) fn apply_change(&mut self, changed: Option<&'static str>, now: Duration) {
        let Some(spec) = changed.and_then(crate::config::spec) else {
            return;
        };
        self.security_reconfigured(spec.name, now);
        match spec.on_change {
            OnChange::Reconnect => {
                // A new identity or server: connect there once the answer is out (and the
                // CALL in flight is answered), and boot anew.
                self.session
                    .move_to(target_of(&self.config, &self.durable), now);
                self.move_soon(now);
            }
            OnChange::Heartbeat => self.session.activity(now),
            OnChange::ClockAligned => self.metering.next_aligned = self.next_aligned_after(now),
            OnChange::Insight => {
                // The answer first; then the stream starts or stops.
                self.drain_transmit();
                self.link
                    .outputs
                    .push(Output::Insight(self.insight_target()));
            }
            OnChange::SampleInterval => {
                let next = self.sample_interval().map(|i| now + i);
                for c in 1..=self.connector_count() {
                    if self.has_transaction(c) {
                        self.connectors[c as usize].schedule_sample(next);
                    }
                }
            }
            OnChange::Statuses if self.session.online() => self.report_statuses(now, false),
            OnChange::Statuses | OnChange::Nothing => {}
        }
    }

    /// The connectors a MeterValues trigger covers (all for none or 0) that have a reading.
    pub(super) fn metered(&self, connector: Option<i32>) -> Vec<u32> {
        let all = 1..=self.connector_count();
        all.filter(|c| connector.is_none_or(|x| x == 0 || x as u32 == *c))
            .filter(|c| self.connectors[*c as usize].reading().is_some())
            .collect()
    }

    /// A MeterValues of MeterValuesSampledData for a connector.
    pub(super) fn send_meter_values(
        &mut self,
        connector: u32,
        context: ReadingContext,
        now: Duration,
    ) {
        let Some(reading) = self.connectors[connector as usize].reading().cloned() else {
            return;
        };
        let previous = self.connectors[connector as usize].sampled_at(reading.energy_wh);
        let interval = previous.map_or(0, |p| reading.energy_wh - p);
        let list = self.config.text(keys::METER_VALUES_SAMPLED_DATA).to_owned();
        let value =
            crate::meter::sample(&list, &reading, interval, context, self.time.clock.at(now));
        let request = MeterValuesRequest {
            connector_id: connector as i32,
            transaction_id: self.transaction_id(connector),
            meter_value: vec![value],
        };
        self.call(&request, now);
    }

    /// Whether a trigger may name this connector (none, 0 or one of the pile's).
    pub(super) fn trigger_connector_ok(&self, connector: Option<i32>) -> bool {
        let count = self.connector_count() as i32;
        connector.is_none_or(|c| (0..=count).contains(&c))
    }

    /// What TriggerMessage answers (ExtendedTriggerMessage too, for the messages both know).
    pub(super) fn trigger_status(
        &self,
        message: &MessageTrigger,
        connector: Option<i32>,
    ) -> TriggerMessageStatus {
        if !self.trigger_connector_ok(connector) {
            return TriggerMessageStatus::Rejected;
        }
        match message {
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
        }
    }

    pub(super) fn trigger(
        &mut self,
        id: &str,
        message: MessageTrigger,
        connector: Option<i32>,
        now: Duration,
    ) {
        let status = self.trigger_status(&message, connector);
        self.respond(
            id,
            TriggerMessageResponse {
                status: status.clone(),
            },
        );
        if status == TriggerMessageStatus::Accepted {
            // The answer first, then the triggered message.
            self.send_triggered(message, connector, now);
        }
    }

    /// Sends the message a trigger that was accepted asks for.
    pub(super) fn send_triggered(
        &mut self,
        message: MessageTrigger,
        connector: Option<i32>,
        now: Duration,
    ) {
        match message {
            MessageTrigger::BootNotification => self.send_boot(now),
            MessageTrigger::Heartbeat => {
                self.call(&HeartbeatRequest {}, now);
            }
            MessageTrigger::FirmwareStatusNotification => {
                let status = self.firmware_status();
                self.call(&FirmwareStatusNotificationRequest { status }, now);
            }
            MessageTrigger::MeterValues => {
                for c in self.metered(connector) {
                    self.send_meter_values(c, ReadingContext::Trigger, now);
                }
            }
            MessageTrigger::DiagnosticsStatusNotification => {
                let status = self.diagnostics_status();
                self.call(&DiagnosticsStatusNotificationRequest { status }, now);
            }
            MessageTrigger::StatusNotification => match connector {
                Some(c) => self.send_status(c as u32, self.reported_now(c as u32), now),
                None => {
                    for c in 0..=self.connector_count() {
                        self.send_status(c, self.reported_now(c), now);
                    }
                }
            },
            MessageTrigger::Unrecognized(_) => {}
        }
    }
}

impl ChargePoint {
    /// RemoteStartTransaction: accepted for a connector that can start a transaction; the idTag
    /// is authorized first when AuthorizeRemoteTxRequests says so. A charging profile must be a
    /// TxProfile without transactionId (FAQ 3.15); it is installed when the transaction starts.
    fn remote_start(&mut self, id: &str, r: RemoteStartTransactionRequest, now: Duration) {
        let connector = match r.connector_id {
            Some(c) if c >= 1 => Some(c as u32),
            Some(_) => None,
            None => self.connector_for(r.id_tag.as_str()),
        };
        let authorize_first = self.config.flag(keys::AUTHORIZE_REMOTE_TX_REQUESTS);
        // One authorization at a time: a remote start that would need a second is refused.
        let connector = connector.filter(|c| {
            self.can_start(*c)
                && self.reservation_for(*c, r.id_tag.as_str(), None).is_ok()
                && !self.connectors[*c as usize].is_authorized()
                && r.charging_profile
                    .as_ref()
                    .is_none_or(|p| self.remote_start_profile_fits(p))
                && !(authorize_first && self.authorization.is_pending())
        });
        let status = if connector.is_some() {
            RemoteStartStopStatus::Accepted
        } else {
            RemoteStartStopStatus::Rejected
        };
        self.respond(id, RemoteStartTransactionResponse { status });
        let Some(c) = connector else { return };
        let tag = r.id_tag.as_str().to_owned();
        if authorize_first {
            self.authorize(&tag, Purpose::Start(c), now);
            self.authorization.set_remote_profile(r.charging_profile);
        } else {
            self.connectors[c as usize].authorize(super::authorization::Authorized {
                id_tag: tag,
                parent: None,
                since: now,
                profile: r.charging_profile,
            });
            self.statuses_changed(now);
        }
    }
}

/// How long a Reset waits for the answers to the StopTransactions it caused.
pub const RESET_STOP_WAIT: Duration = Duration::from_secs(15);

impl ChargePoint {
    /// Restarts a waiting reset once the outbox is empty, the pile cannot send, or the wait is
    /// over.
    pub(super) fn restart_when_stops_answered(&mut self, now: Duration) {
        let Some((hard, until)) = self.reset.waiting else {
            return;
        };
        let can_send = self.session.online();
        if self.outbox_len() == 0 || !can_send || now >= until {
            self.reset.restart();
            self.drive();
            self.drain_transmit();
            self.link.outputs.push(Output::Restart { hard });
        }
    }
}
