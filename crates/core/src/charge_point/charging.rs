//! The power path of each connector: what the control pilot offers, when the relay closes, the
//! cable's capacity (CC), over-temperature derating and the buzzer (OEM_FunctionMask bits 0, 1
//! and 3, FAQ 3.13), plug-and-charge (VendorDirectWorkMode, FAQ 3.4).

use ocpp::StopReason;

use super::connector::Cable;
use super::*;
use crate::hardware::{Beep, HardwareCommand, Pilot};

/// From this temperature (any sensor, °C) the pile offers half its rated current, unless
/// OEM_FunctionMask bit 3 shields the derating.
pub const DERATING_FROM_C: f64 = 70.0;

impl ChargePoint {
    /// Whether OEM_FunctionMask sets the bit of that name (FAQ 3.13).
    fn function(&self, bit: &str) -> bool {
        oem::FUNCTION_MASK.is_set(self.config.mask(keys::OEM_FUNCTION_MASK), bit)
    }

    pub(super) fn beep(&mut self, beep: Beep) {
        if !self.function("buzzer_off") {
            self.link
                .outputs
                .push(Output::Hardware(HardwareCommand::Beep(beep)));
        }
    }

    /// The current the pile may offer on a connector with a transaction, or `None` when the
    /// pile holds the energy back (SuspendedEVSE).
    pub fn offer_limit(&self, connector: u32) -> Option<f64> {
        let tx = self.transaction(connector)?;
        if self
            .fault_assessment()
            .effect
            .is_some_and(|e| e <= Effect::Suspend)
        {
            return None;
        }
        if let Some(at) = tx.invalidated_at_wh {
            let allowed = self.config.int(keys::MAX_ENERGY_ON_INVALID_ID).max(0);
            if self.register(connector) - at >= allowed {
                return None;
            }
        }
        let socket = &self.connectors[connector as usize];
        let mut amps = self.settings.options.rated_current_a;
        if !self.function("cc_off") {
            match socket.cable() {
                Cable::Unknown => {}
                Cable::Rated(a) => amps = amps.min(a),
                Cable::Invalid => return None,
            }
        }
        let hot = socket
            .reading()
            .is_some_and(|m| m.temperatures_c.iter().any(|t| *t >= DERATING_FROM_C));
        if hot && !self.function("derating_off") {
            amps = amps.min(self.settings.options.rated_current_a / 2.0);
        }
        if let Some(limit) = self.profile_limit_now(connector) {
            amps = amps.min(limit);
        }
        // The pilot cannot signal less than 6 A: below that, nothing.
        (amps >= crate::smart_charging::MIN_PILOT_AMPS).then_some(amps)
    }

    /// Tells the hardware what changed: the offer before the relay closes, the relay before
    /// the offer goes.
    pub(super) fn drive(&mut self) {
        for c in 1..self.connectors.len() as u32 {
            let offer = self.offer_limit(c);
            let socket = &self.connectors[c as usize];
            let relay = offer.is_some() && socket.pilot() == Pilot::C;
            let (old_offer, old_relay) = (socket.offer(), socket.relay_closed());
            if old_relay && !relay {
                self.link
                    .outputs
                    .push(Output::Hardware(HardwareCommand::Relay {
                        connector: c,
                        closed: false,
                    }));
            }
            if old_offer != offer {
                self.link
                    .outputs
                    .push(Output::Hardware(HardwareCommand::Offer {
                        connector: c,
                        amps: offer,
                    }));
            }
            if relay && !old_relay {
                self.link
                    .outputs
                    .push(Output::Hardware(HardwareCommand::Relay {
                        connector: c,
                        closed: true,
                    }));
            }
            self.connectors[c as usize].drive(offer, relay);
        }
    }

    /// Whether the relay of a connector is closed.
    pub fn relay_closed(&self, connector: u32) -> bool {
        self.connectors
            .get(connector as usize)
            .is_some_and(|s| s.relay_closed())
    }

    /// What the pilot offers on a connector now (A).
    pub fn offered(&self, connector: u32) -> Option<f64> {
        self.connectors
            .get(connector as usize)
            .and_then(|s| s.offer())
    }

    /// A connector's meter register (Wh).
    pub fn meter_register(&self, connector: u32) -> i64 {
        self.register(connector)
    }

    pub fn pilot(&self, connector: u32) -> Option<Pilot> {
        self.connectors.get(connector as usize).map(|s| s.pilot())
    }

    /// Starts a transaction on a connector with a plug in, for the idTag accepted for it or,
    /// in plug-and-charge mode, for the pile itself.
    fn try_start(&mut self, connector: u32, now: Duration) {
        if self.reset.pending() || !self.is_plugged(connector) || !self.can_start(connector) {
            return;
        }
        let socket = &self.connectors[connector as usize];
        if let Some(a) = socket.authorized().cloned() {
            match self.reservation_for(connector, &a.id_tag, a.parent.as_deref()) {
                Ok(reservation) => {
                    if let Some(id) = reservation {
                        self.end_reservation(id, now);
                    }
                    self.start_transaction(connector, &a.id_tag, a.parent, reservation, now);
                    if let Some(profile) = a.profile {
                        self.install_profile(connector, profile);
                    }
                }
                // Held for another idTag since: the card's acceptance lapses.
                Err(()) => self.connectors[connector as usize].lapse_authorization(),
            }
        } else if self.config.flag(keys::VENDOR_DIRECT_WORK_MODE) && !socket.is_finishing() {
            // Plug and charge: no card; the transaction carries the pile's serial number. It
            // does not take a connector held by a reservation.
            let tag = self.config.factory().serial_number.clone();
            if let Ok(reservation) = self.reservation_for(connector, &tag, None) {
                if let Some(id) = reservation {
                    self.end_reservation(id, now);
                }
                self.start_transaction(connector, &tag, None, reservation, now);
            }
        }
    }

    pub(super) fn on_plug(&mut self, connector: u32, plugged: bool, now: Duration) {
        let Some(was) = self
            .connectors
            .get(connector as usize)
            .filter(|_| connector > 0)
            .map(|c| c.is_plugged())
        else {
            return;
        };
        if !plugged && was {
            self.connectors[connector as usize].unplugged();
            if self.has_transaction(connector)
                && self
                    .config
                    .flag(keys::STOP_TRANSACTION_ON_EV_SIDE_DISCONNECT)
            {
                // The EV side is gone: the transaction stops (Finishing), then the connector is
                // free (Available).
                self.stop_transaction(connector, StopReason::EvDisconnected, None, now);
            }
            self.connectors[connector as usize].stop_finishing();
            if self
                .config
                .flag(keys::UNLOCK_CONNECTOR_ON_EV_SIDE_DISCONNECT)
            {
                self.link
                    .outputs
                    .push(Output::Hardware(HardwareCommand::Unlock { connector }));
            }
        }
        self.connectors[connector as usize].plug(plugged, now);
        self.statuses_changed(now);
    }

    /// Starts the transactions that can start now: after an accepted card, a plug, a cleared
    /// fault, a connector made operative again.
    pub(super) fn start_what_can_start(&mut self, now: Duration) {
        for c in 1..=self.connector_count() {
            self.try_start(c, now);
        }
    }

    /// Authorizations that waited for a plug longer than ConnectionTimeOut lapse.
    pub(super) fn lapse_authorizations(&mut self, now: Duration) {
        let timeout = self.connection_timeout();
        let mut lapsed = false;
        for socket in self.connectors.iter_mut() {
            if socket
                .authorized()
                .is_some_and(|a| now >= a.since + timeout)
            {
                socket.lapse_authorization();
                lapsed = true;
            }
        }
        if lapsed {
            self.statuses_changed(now);
        }
    }
}
