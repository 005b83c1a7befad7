//! Reservations (Reservation profile): ReserveNow and CancelReservation, a connector held for an
//! idTag (or its parent) until the reservation is used, cancelled or expires. A reservation of
//! connector 0 (ReserveConnectorZeroSupported) holds the pile's last free connectors.

use ocpp::{
    CancelReservationRequest, CancelReservationResponse, CancelReservationStatus,
    ReservationStatus, ReserveNowRequest, ReserveNowResponse, Timestamp,
};

use super::*;
use crate::durable::Reservation;

impl ChargePoint {
    /// Free: no transaction, no card waiting, operative, not faulted.
    fn is_free(&self, connector: u32) -> bool {
        self.can_start(connector) && !self.connectors[connector as usize].is_authorized()
    }

    /// Free with no plug in: what a new reservation needs.
    fn is_vacant(&self, connector: u32) -> bool {
        self.is_free(connector) && !self.is_plugged(connector)
    }

    /// How many connectors are vacant and not reserved by themselves, not counting `except`.
    fn pool(&self, except: u32) -> usize {
        let own_reserved = |c: u32| {
            self.durable
                .reservations()
                .values()
                .any(|r| r.connector == c)
        };
        (1..=self.connector_count())
            .filter(|c| *c != except && self.is_vacant(*c) && !own_reserved(*c))
            .count()
    }

    fn zero_reservations(&self) -> usize {
        self.durable
            .reservations()
            .values()
            .filter(|r| r.connector == 0)
            .count()
    }

    /// The reservation holding a connector: its own, or one of connector 0 when the vacant
    /// connectors are no more than the reservations of connector 0 (then each vacant one is
    /// held).
    pub(super) fn holding(&self, connector: u32) -> Option<(i32, &Reservation)> {
        let own = self
            .durable
            .reservations()
            .iter()
            .find(|(_, r)| r.connector == connector)
            .map(|(id, r)| (*id, r));
        if own.is_some() {
            return own;
        }
        let zero: Vec<(i32, &Reservation)> = self
            .durable
            .reservations()
            .iter()
            .filter(|(_, r)| r.connector == 0)
            .map(|(id, r)| (*id, r))
            .collect();
        if zero.is_empty() {
            return None;
        }
        (self.is_vacant(connector) && self.pool(0) <= zero.len()).then(|| zero[0])
    }

    /// Whether a held connector shows Reserved: it has no transaction and no card waiting.
    pub(super) fn is_free_for_status(&self, connector: u32) -> bool {
        !self.has_transaction(connector) && !self.connectors[connector as usize].is_authorized()
    }

    /// The reservation an idTag (with its parent) would use on a connector: `Ok(None)` when the
    /// connector is not held, `Ok(Some(id))` when held for this idTag, `Err(())` when held for
    /// another.
    pub(super) fn reservation_for(
        &self,
        connector: u32,
        id_tag: &str,
        parent: Option<&str>,
    ) -> Result<Option<i32>, ()> {
        let matches = |r: &Reservation| {
            r.id_tag.eq_ignore_ascii_case(id_tag)
                || r.parent_id_tag
                    .as_deref()
                    .zip(parent)
                    .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
        };
        // A connector reserved by itself is for its idTag only.
        if let Some((id, r)) = self
            .durable
            .reservations()
            .iter()
            .find(|(_, r)| r.connector == connector)
        {
            return if matches(r) { Ok(Some(*id)) } else { Err(()) };
        }
        // A reservation of connector 0 for this idTag.
        if let Some((id, _)) = self
            .durable
            .reservations()
            .iter()
            .find(|(_, r)| r.connector == 0 && matches(r))
        {
            return Ok(Some(*id));
        }
        if self.holding(connector).is_some() {
            return Err(());
        }
        // Starting here must leave a vacant connector for each reservation of connector 0.
        let own_reserved = self
            .durable
            .reservations()
            .values()
            .any(|r| r.connector == connector);
        if !own_reserved && self.pool(connector) < self.zero_reservations() {
            return Err(());
        }
        Ok(None)
    }

    pub(super) fn reserve_now(&mut self, id: &str, r: ReserveNowRequest, now: Duration) {
        let status = self.reserve(r, now);
        self.respond(id, ReserveNowResponse { status });
        self.statuses_changed(now);
    }

    fn reserve(&mut self, r: ReserveNowRequest, now: Duration) -> ReservationStatus {
        let count = self.connector_count() as i32;
        let zero = r.connector_id == 0;
        if r.connector_id < 0
            || r.connector_id > count
            || (zero && !self.config.flag(keys::RESERVE_CONNECTOR_ZERO_SUPPORTED))
            || r.expiry_date <= self.time.clock.at(now)
        {
            return ReservationStatus::Rejected;
        }
        // The same reservationId replaces that reservation.
        let previous = self.durable.end_reservation(r.reservation_id);
        let connector = r.connector_id as u32;
        let status = if self.fault_assessment().effect == Some(Effect::Stop) {
            ReservationStatus::Faulted
        } else if zero {
            if (1..=count as u32).any(|c| self.is_vacant(c) && self.holding(c).is_none()) {
                ReservationStatus::Accepted
            } else if self.upgrading() || (1..=count as u32).all(|c| self.is_inoperative(c)) {
                ReservationStatus::Unavailable
            } else {
                ReservationStatus::Occupied
            }
        } else if self.is_inoperative(connector) || self.upgrading() {
            ReservationStatus::Unavailable
        } else if self.is_vacant(connector) && self.holding(connector).is_none() {
            ReservationStatus::Accepted
        } else {
            ReservationStatus::Occupied
        };
        if status == ReservationStatus::Accepted {
            if let Some(previous) = previous {
                self.release(previous.connector, now);
            }
            self.durable.reserve(
                r.reservation_id,
                Reservation {
                    connector,
                    expiry: r.expiry_date,
                    id_tag: r.id_tag.as_str().to_owned(),
                    parent_id_tag: r.parent_id_tag.map(|p| p.as_str().to_owned()),
                },
            );
            self.persist();
        } else if let Some(previous) = previous {
            self.durable.reserve(r.reservation_id, previous);
        }
        status
    }

    pub(super) fn cancel_reservation(
        &mut self,
        id: &str,
        r: CancelReservationRequest,
        now: Duration,
    ) {
        let status = if self.end_reservation(r.reservation_id, now) {
            CancelReservationStatus::Accepted
        } else {
            CancelReservationStatus::Rejected
        };
        self.respond(id, CancelReservationResponse { status });
        self.statuses_changed(now);
    }

    /// Ends a reservation (used, cancelled, expired); whether there was one.
    pub(super) fn end_reservation(&mut self, reservation_id: i32, now: Duration) -> bool {
        let Some(r) = self.durable.end_reservation(reservation_id) else {
            return false;
        };
        self.release(r.connector, now);
        self.persist();
        true
    }

    /// A connector a reservation no longer holds: a plug that went in meanwhile starts afresh
    /// (Reserved → Preparing, never → Finishing).
    fn release(&mut self, connector: u32, now: Duration) {
        if let Some(socket) = self.connectors.get_mut(connector as usize) {
            socket.replug(now);
        }
    }

    /// The reservations of connectors set Inoperative end (Reserved → Unavailable → Reserved is
    /// not a path OCPP allows).
    pub(super) fn end_reservations_of_inoperative(&mut self, now: Duration) {
        let ended: Vec<i32> = self
            .durable
            .reservations()
            .iter()
            .filter(|(_, r)| r.connector != 0 && self.is_inoperative(r.connector))
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            self.end_reservation(id, now);
        }
    }

    /// When the next reservation expires.
    pub(super) fn next_expiry(&self) -> Option<Duration> {
        let wall = self.time.clock.at(self.time.now);
        self.durable
            .reservations()
            .values()
            .map(|r| {
                let ms = (r.expiry.millis() - wall.millis()).max(0) as u64;
                self.time.now + Duration::from_millis(ms)
            })
            .min()
    }

    pub(super) fn expire_reservations(&mut self, now: Duration) {
        let wall: Timestamp = self.time.clock.at(now);
        let expired: Vec<i32> = self
            .durable
            .reservations()
            .iter()
            .filter(|(_, r)| r.expiry <= wall)
            .map(|(id, _)| *id)
            .collect();
        if expired.is_empty() {
            return;
        }
        for id in expired {
            self.end_reservation(id, now);
        }
        self.statuses_changed(now);
    }
}
