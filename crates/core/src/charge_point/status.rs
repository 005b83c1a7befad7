//! Connector statuses: what each connector shows, and the StatusNotifications that report it
//! (transition table, MinimumStatusDuration, availability).

use super::*;

impl ChargePoint {
    /// The status a connector shows now.
    pub fn status(&self, connector: u32) -> ChargePointStatus {
        // An upgrade makes the connectors Unavailable, once a transaction has ended and a
        // connector has left Preparing (OCPP has no step from Preparing to Unavailable).
        let upgrade_holds = self.upgrading()
            && (connector == 0
                || (!self.has_transaction(connector)
                    && self.natural_status(connector) != ChargePointStatus::Preparing));
        let inoperative = (self.is_inoperative(connector)
            && !self.durable.scheduled().contains(&connector))
            || upgrade_holds;
        if self.fault_assessment().effect == Some(Effect::Stop) {
            ChargePointStatus::Faulted
        } else if inoperative {
            ChargePointStatus::Unavailable
        } else if connector > 0
            && self.holding(connector).is_some()
            && self.is_free_for_status(connector)
        {
            ChargePointStatus::Reserved
        } else {
            self.natural_status(connector)
        }
    }

    /// The status from the transaction, the plug and the pilot.
    /// Set Inoperative, by itself or with the whole pile.
    pub(super) fn is_inoperative(&self, connector: u32) -> bool {
        self.durable.is_inoperative(connector)
    }

    /// The whole pile made Inoperative (a firmware upgrade whose notifications were not all
    /// answered leaves it Unavailable, FAQ 3.10).
    pub(super) fn make_pile_inoperative(&mut self) {
        self.durable.make_inoperative(0);
    }

    pub(super) fn natural_status(&self, connector: u32) -> ChargePointStatus {
        if self.has_transaction(connector) {
            return if self.offer_limit(connector).is_none() {
                ChargePointStatus::SuspendedEvse
            } else if self.connectors[connector as usize].pilot() == Pilot::C {
                ChargePointStatus::Charging
            } else {
                ChargePointStatus::SuspendedEv
            };
        }
        let socket = self.connectors.get(connector as usize);
        if self.is_plugged(connector) && socket.is_some_and(|s| s.is_finishing()) {
            // The transaction ended; the plug is still in.
            return ChargePointStatus::Finishing;
        }
        if socket.is_some_and(|s| s.is_authorized()) {
            // Accepted, waiting for the plug.
            return ChargePointStatus::Preparing;
        }
        match socket.and_then(|c| c.plugged_since()) {
            // Plugged in without a transaction: Preparing until ConnectionTimeOut, then
            // Finishing, as the user still has to unplug (ERR 3.20).
            Some(since) if self.time.now >= since + self.connection_timeout() => {
                ChargePointStatus::Finishing
            }
            Some(_) => ChargePointStatus::Preparing,
            None => ChargePointStatus::Available,
        }
    }

    /// Scheduled changes to Unavailable take effect once their connector has no transaction
    /// and left Preparing.
    pub(super) fn release_scheduled(&mut self) -> bool {
        let done: Vec<u32> = self
            .durable
            .scheduled()
            .iter()
            .copied()
            .filter(|c| {
                !self.has_transaction(*c) && self.natural_status(*c) != ChargePointStatus::Preparing
            })
            .collect();
        if done.is_empty() {
            return false;
        }
        for c in done {
            self.durable.release_scheduled(c);
        }
        self.persist();
        true
    }

    pub(super) fn connection_timeout(&self) -> Duration {
        self.config.seconds(keys::CONNECTION_TIME_OUT)
    }

    /// What the active faults amount to under the current masks.
    pub fn fault_assessment(&self) -> Assessment {
        faults::assess(
            &self.hardware.faults,
            self.config.mask(keys::OEM_FAULT_MASK),
            self.config.mask(keys::OEM_FUNCTION_MASK),
        )
    }

    pub(super) fn reported_now(&self, connector: u32) -> Reported {
        let a = self.fault_assessment();
        (self.status(connector), a.error_code, a.vendor_error_code)
    }

    pub(super) fn statuses_changed(&mut self, now: Duration) {
        let report = |cp: &mut Self| {
            if cp.session.online() {
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

    /// Sends StatusNotification for each connector whose status differs from the last one
    /// reported (or for all with `all`).
    pub(super) fn report_statuses(&mut self, now: Duration, all: bool) {
        let hold = self.config.seconds(keys::MINIMUM_STATUS_DURATION);
        for connector in 0..self.connectors.len() as u32 {
            let c = connector as usize;
            let current = self.reported_now(connector);
            if all || hold.is_zero() {
                // A status still held back (MinimumStatusDuration was just lowered) goes out
                // first where skipping it would make a transition OCPP does not allow.
                if let Some((held, _)) = self.connectors[c].take_held() {
                    let from = self.connectors[c].reported().map(|r| r.0.clone());
                    let skippable = connector == 0
                        || from
                            .as_ref()
                            .is_none_or(|f| crate::transitions::allowed(f, &current.0));
                    if !all && !skippable && held != current {
                        self.send_status(connector, held, now);
                    }
                }
                if all || self.connectors[c].reported() != Some(&current) {
                    self.send_status(connector, current, now);
                }
                continue;
            }
            if self.connectors[c].reported() == Some(&current) {
                // Back to what was last reported: whatever happened in between lasted too
                // short to report (MinimumStatusDuration).
                self.connectors[c].take_held();
                continue;
            }
            match self.connectors[c].take_held() {
                Some((held, since)) if held == current => {
                    if now >= since + hold {
                        self.send_status(connector, current, now);
                    } else {
                        self.connectors[c].hold(held, since);
                    }
                }
                Some((held, _)) => {
                    // The status moved on before the held one was reported. Skipping it must
                    // still leave a transition OCPP allows; otherwise it is reported now.
                    let from = self.connectors[c].reported().map(|r| r.0.clone());
                    let skippable = connector == 0
                        || from
                            .as_ref()
                            .is_none_or(|f| crate::transitions::allowed(f, &current.0));
                    if !skippable {
                        self.send_status(connector, held, now);
                    }
                    self.connectors[c].hold(current, now);
                }
                None => self.connectors[c].hold(current, now),
            }
        }
    }

    /// A LocalListConflict warning for connector 0, naming the idTag; the next report clears it.
    pub(super) fn report_list_conflict(&mut self, id_tag: &str) {
        if !(self.session.online()) {
            return;
        }
        let now = self.time.now;
        let status = self.status(0);
        let request = StatusNotificationRequest {
            connector_id: 0,
            error_code: ChargePointErrorCode::LocalListConflict,
            info: Some(CiString50::truncating(&format!("idTag {id_tag}"))),
            status: status.clone(),
            timestamp: Some(self.time.clock.at(now)),
            vendor_id: None,
            vendor_error_code: None,
        };
        self.connectors[0].report((status, ChargePointErrorCode::LocalListConflict, None));
        self.call(&request, now);
    }

    pub(super) fn send_status(&mut self, connector: u32, reported: Reported, now: Duration) {
        // A connector held by a reservation of connector 0 once it became free: it was
        // Available first (Preparing → Reserved, say, is not a transition OCPP allows).
        let from = self.connectors[connector as usize]
            .reported()
            .map(|r| r.0.clone());
        if connector > 0
            && reported.0 == ChargePointStatus::Reserved
            && from.is_some_and(|f| !crate::transitions::allowed(&f, &ChargePointStatus::Reserved))
        {
            let available = (
                ChargePointStatus::Available,
                ChargePointErrorCode::NoError,
                None,
            );
            self.send_status(connector, available, now);
        }
        let (status, error_code, vendor_error_code) = reported.clone();
        self.connectors[connector as usize].report(reported);
        let (fault_mask, function_mask) = (
            self.config.mask(keys::OEM_FAULT_MASK),
            self.config.mask(keys::OEM_FUNCTION_MASK),
        );
        let names: Vec<&str> = self
            .hardware
            .faults
            .iter()
            .filter(|f| f.effect(fault_mask, function_mask).is_some())
            .map(|f| f.name())
            .collect();
        let ev_gone =
            connector > 0 && self.has_transaction(connector) && !self.is_plugged(connector);
        let info = if error_code != ChargePointErrorCode::NoError && !names.is_empty() {
            Some(CiString50::truncating(&names.join(",")))
        } else if ev_gone {
            // The transaction goes on without the EV (StopTransactionOnEVSideDisconnect off).
            Some(CiString50::truncating("EV side disconnected"))
        } else {
            None
        };
        let vendor_id = vendor_error_code
            .is_some()
            .then(|| CiString255::truncating(&self.settings.identity.vendor));
        let request = StatusNotificationRequest {
            connector_id: connector as i32,
            error_code,
            info,
            status,
            timestamp: Some(self.time.clock.at(now)),
            vendor_id,
            vendor_error_code: vendor_error_code.map(|v| CiString50::new(v).expect("short hex")),
        };
        self.call(&request, now);
    }

    pub(super) fn change_availability(
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
            self.durable.inoperative().clone(),
            self.durable.scheduled().clone(),
        );
        let status = match kind {
            AvailabilityType::Inoperative => {
                // A transaction goes on to its end, and Preparing → Unavailable is not a
                // transition OCPP allows: those wait.
                let preparing: Vec<u32> = targets
                    .iter()
                    .copied()
                    .filter(|c| {
                        self.has_transaction(*c) || self.status(*c) == ChargePointStatus::Preparing
                    })
                    .collect();
                // An accepted card waiting for its plug lapses.
                for c in &targets {
                    self.connectors[*c as usize].lapse_authorization();
                }
                self.durable.make_inoperative(connector);
                self.end_reservations_of_inoperative(now);
                self.durable.schedule_unavailable(preparing.iter().copied());
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
                // A scheduled change is cancelled once nothing keeps the connector inoperative.
                self.durable.make_operative(connector, &targets);
                // A plug that went in while the connector was unavailable starts afresh:
                // Unavailable → Preparing (never → Finishing, which OCPP does not allow).
                for c in was_unavailable {
                    if let Some(socket) = self.connectors.get_mut(c as usize) {
                        socket.replug(now);
                    }
                    self.connectors[c as usize].stop_finishing();
                }
                AvailabilityStatus::Accepted
            }
            AvailabilityType::Unrecognized(_) => return reject(self),
        };
        if (
            self.durable.inoperative().clone(),
            self.durable.scheduled().clone(),
        ) != before
        {
            self.persist();
        }
        self.respond(id, ChangeAvailabilityResponse { status });
        self.statuses_changed(now);
    }
}
