//! The central system's commands: configuration, triggers, reset, unlock, data transfer.

use super::*;

impl ChargePoint {
    pub(super) fn on_call(&mut self, id: &str, request: Decoded<Request>, now: Duration) {
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

    pub(super) fn live_value(&self, name: &str) -> String {
        match name {
            "OEM_NetState" => self.network.to_json(),
            // No firmware upgrade runs yet: nothing downloaded.
            "GetFirmwareUpgradePercentages" => "0".into(),
            _ => String::new(),
        }
    }

    pub(super) fn change_configuration(&mut self, id: &str, key: &str, value: &str, now: Duration) {
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

    pub(super) fn apply_change(&mut self, changed: Option<&'static str>, now: Duration) {
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

    /// The connectors a MeterValues trigger covers (all for none or 0) that have a reading.
    pub(super) fn metered(&self, connector: Option<i32>) -> Vec<u32> {
        let all = 1..=self.connector_count();
        all.filter(|c| connector.is_none_or(|x| x == 0 || x as u32 == *c))
            .filter(|c| self.meters[*c as usize].is_some())
            .collect()
    }

    /// A MeterValues of MeterValuesSampledData for a connector.
    pub(super) fn send_meter_values(
        &mut self,
        connector: u32,
        context: ReadingContext,
        now: Duration,
    ) {
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

    pub(super) fn trigger(
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
