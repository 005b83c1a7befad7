//! Counters a host keeps for the piles it runs (one, or a fleet's thousands sharing one set):
//! how many are connected, accepted and charging now, and how many frames, connections and
//! failures there were. Atomics only, so that a summary is read without asking any pile.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Telemetry {
    /// Piles with an open websocket now.
    pub connected: AtomicI64,
    /// Piles whose last BootNotification was accepted, on an open websocket.
    pub accepted: AtomicI64,
    /// Connectors whose relay is closed now.
    pub charging: AtomicI64,
    /// Piles that have been accepted at least once since they started.
    pub booted: AtomicU64,
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    /// Websockets opened, the first of each pile included.
    pub connections: AtomicU64,
    /// Connections that failed to open, or failed while open (a write timeout, a lost link).
    pub failures: AtomicU64,
}

/// A snapshot of [`Telemetry`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub connected: i64,
    pub accepted: i64,
    pub charging: i64,
    pub booted: u64,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub connections: u64,
    pub failures: u64,
}

impl Telemetry {
    pub fn counts(&self) -> Counts {
        let r = Ordering::Relaxed;
        Counts {
            connected: self.connected.load(r),
            accepted: self.accepted.load(r),
            charging: self.charging.load(r),
            booted: self.booted.load(r),
            frames_sent: self.frames_sent.load(r),
            frames_received: self.frames_received.load(r),
            connections: self.connections.load(r),
            failures: self.failures.load(r),
        }
    }
}

/// What one pile last added to the shared gauges, so that it changes them by the difference
/// and takes itself out when it stops.
#[derive(Debug, Default)]
pub(crate) struct Share {
    connected: bool,
    accepted: bool,
    booted: bool,
    charging: i64,
}

impl Share {
    pub(crate) fn update(&mut self, t: &Telemetry, connected: bool, accepted: bool, charging: i64) {
        let r = Ordering::Relaxed;
        let accepted = accepted && connected;
        if connected != self.connected {
            t.connected.fetch_add(if connected { 1 } else { -1 }, r);
            self.connected = connected;
        }
        if accepted != self.accepted {
            t.accepted.fetch_add(if accepted { 1 } else { -1 }, r);
            self.accepted = accepted;
        }
        if accepted && !self.booted {
            t.booted.fetch_add(1, r);
            self.booted = true;
        }
        if charging != self.charging {
            t.charging.fetch_add(charging - self.charging, r);
            self.charging = charging;
        }
    }

    /// The pile stops: what it counted in the gauges goes.
    pub(crate) fn leave(&mut self, t: &Telemetry) {
        self.update(t, false, false, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_move_by_what_each_pile_changes_and_lose_it_when_it_stops() {
        let t = Telemetry::default();
        let (mut a, mut b) = (Share::default(), Share::default());
        a.update(&t, true, false, 0);
        b.update(&t, true, true, 2);
        a.update(&t, true, true, 1);
        let c = t.counts();
        assert_eq!(
            (c.connected, c.accepted, c.charging, c.booted),
            (2, 2, 3, 2)
        );
        // A lost connection is not accepted either; booted counts once per pile.
        b.update(&t, false, true, 2);
        b.update(&t, true, true, 0);
        let c = t.counts();
        assert_eq!(
            (c.connected, c.accepted, c.charging, c.booted),
            (2, 2, 1, 2)
        );
        a.leave(&t);
        b.leave(&t);
        let c = t.counts();
        assert_eq!(
            (c.connected, c.accepted, c.charging, c.booted),
            (0, 0, 0, 2)
        );
    }
}
