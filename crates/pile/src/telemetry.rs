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
    /// CALLs of the piles answered (CALLRESULT or CALLERROR), and of them MeterValues.
    pub calls_answered: AtomicU64,
    pub meter_values_answered: AtomicU64,
    /// The time from a CALL written to its answer read.
    pub latency: Latency,
}

/// A histogram of durations in buckets a quarter of a power of two wide (from 1 µs to about
/// 70 s), atomics only.
#[derive(Debug)]
pub struct Latency {
    buckets: Vec<AtomicU64>,
}

const BUCKETS: usize = 4 * 27;

impl Default for Latency {
    fn default() -> Self {
        Latency {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Latency {
    fn bucket(d: std::time::Duration) -> usize {
        let us = d.as_secs_f64() * 1e6;
        if us <= 1.0 {
            return 0;
        }
        ((us.log2() * 4.0) as usize).min(BUCKETS - 1)
    }

    /// The upper end of a bucket.
    fn upper(bucket: usize) -> std::time::Duration {
        std::time::Duration::from_secs_f64(2f64.powf((bucket + 1) as f64 / 4.0) / 1e6)
    }

    pub fn record(&self, d: std::time::Duration) {
        self.buckets[Self::bucket(d)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts per bucket now (to take the difference over a window).
    pub fn snapshot(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// The `q` quantile (0..1) of the samples counted in `counts` (a snapshot, or the
    /// difference of two), as the upper end of its bucket; `None` without samples.
    pub fn quantile(counts: &[u64], q: f64) -> Option<std::time::Duration> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(Self::upper(i));
            }
        }
        Some(Self::upper(counts.len() - 1))
    }
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
    pub calls_answered: u64,
    pub meter_values_answered: u64,
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
            calls_answered: self.calls_answered.load(r),
            meter_values_answered: self.meter_values_answered.load(r),
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

/// The CALL of a pile awaiting its answer (a pile has one at a time, OCPP-J 4.1.1), to time it.
#[derive(Debug, Default)]
pub(crate) struct CallTimer {
    pending: Option<(String, bool, std::time::Instant)>,
}

/// The message id of a CALL (`[2,"id","Action",...]`) and whether it is MeterValues, or of an
/// answer (`[3,"id",...]`, `[4,"id",...]`), read without parsing the whole frame.
fn frame_id(frame: &str) -> Option<(u8, &str, &str)> {
    let rest = frame.trim_start().strip_prefix('[')?.trim_start();
    let kind = rest.as_bytes().first()?.wrapping_sub(b'0');
    let rest = rest[1..].trim_start().strip_prefix(',')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    let after = rest[end + 1..].trim_start().strip_prefix(',').unwrap_or("");
    Some((kind, &rest[..end], after.trim_start()))
}

impl CallTimer {
    pub(crate) fn sent(&mut self, frame: &str) {
        if let Some((2, id, after)) = frame_id(frame) {
            let meter = after.starts_with("\"MeterValues\"");
            self.pending = Some((id.to_owned(), meter, std::time::Instant::now()));
        }
    }

    pub(crate) fn received(&mut self, frame: &str, t: &Telemetry) {
        let Some((3 | 4, id, _)) = frame_id(frame) else {
            return;
        };
        if self.pending.as_ref().is_some_and(|(p, _, _)| p == id) {
            let (_, meter, at) = self.pending.take().unwrap_or_else(|| unreachable!());
            t.latency.record(at.elapsed());
            t.calls_answered.fetch_add(1, Ordering::Relaxed);
            if meter {
                t.meter_values_answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The connection is gone with the CALL.
    pub(crate) fn forget(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_timed_from_its_frame_to_its_answer() {
        let t = Telemetry::default();
        let mut timer = CallTimer::default();
        timer.sent(r#"[2,"tx-1-3","MeterValues",{"connectorId":1,"meterValue":[]}]"#);
        timer.received(r#"[3,"other",{}]"#, &t);
        assert_eq!(t.counts().calls_answered, 0, "not its answer");
        timer.received(r#"[3, "tx-1-3", {}]"#, &t);
        timer.received(r#"[3,"tx-1-3",{}]"#, &t);
        timer.sent(r#"[2,"1-9","Heartbeat",{}]"#);
        timer.received(r#"[4,"1-9","InternalError","",{}]"#, &t);
        let c = t.counts();
        assert_eq!((c.calls_answered, c.meter_values_answered), (2, 1));
        let counts = t.latency.snapshot();
        assert_eq!(counts.iter().sum::<u64>(), 2);
        assert!(Latency::quantile(&counts, 0.99).unwrap() < std::time::Duration::from_secs(1));
        // An answer the pile sends is no CALL of its own.
        timer.sent(r#"[3,"c-1",{}]"#);
        timer.received(r#"[3,"c-1",{}]"#, &t);
        assert_eq!(t.counts().calls_answered, 2);
    }

    #[test]
    fn quantiles_come_from_the_buckets() {
        let l = Latency::default();
        for ms in 1..=100u64 {
            l.record(std::time::Duration::from_millis(ms));
        }
        let counts = l.snapshot();
        let p50 = Latency::quantile(&counts, 0.5).unwrap();
        let p99 = Latency::quantile(&counts, 0.99).unwrap();
        // Buckets are a quarter power of two wide: within 19 % above the true value.
        assert!(
            p50 >= std::time::Duration::from_millis(50)
                && p50 < std::time::Duration::from_millis(60),
            "{p50:?}"
        );
        assert!(
            p99 >= std::time::Duration::from_millis(99)
                && p99 < std::time::Duration::from_millis(118),
            "{p99:?}"
        );
        assert_eq!(Latency::quantile(&[0; 4], 0.5), None);
    }

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
