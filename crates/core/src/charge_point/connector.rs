//! One connector as the core knows and drives it: the status it reported (and one held back),
//! its meter, its plug, pilot and cable, the card accepted for it, and what its hardware was
//! last told. Index 0 of the charge point's connectors, the pile as a whole, only reports a
//! status.

use std::time::Duration;

use super::authorization::Authorized;
use super::Reported;
use crate::hardware::{MeterReading, Pilot};

/// The cable's capacity as CC reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Cable {
    /// Nothing reported: the pile's own (tethered) cable, good for the rated current.
    Unknown,
    Rated(f64),
    /// No valid CC resistor: not safe to charge while CC is checked.
    Invalid,
}

#[derive(Debug, Clone)]
pub(super) struct Connector {
    report: StatusReport,
    metering: ConnectorMeter,
    plug: Plug,
    /// A card or remote start accepted before the plug went in.
    authorized: Option<Authorized>,
    /// A transaction ended and the plug is still in.
    finishing: bool,
    /// What the hardware was last told.
    offer: Option<f64>,
    relay: bool,
}

/// The status last reported, and a changed one held back until it has lasted
/// MinimumStatusDuration (with since when).
#[derive(Debug, Clone, Default)]
struct StatusReport {
    reported: Option<Reported>,
    held: Option<(Reported, Duration)>,
}

/// The last reading of the meter, the register at the previous triggered sample, and when the
/// next periodic sample of the transaction is due.
#[derive(Debug, Clone, Default)]
struct ConnectorMeter {
    reading: Option<MeterReading>,
    sampled_register: Option<i64>,
    next_sample: Option<Duration>,
}

/// Since when a plug is in, and what the pilot and CC read.
#[derive(Debug, Clone)]
struct Plug {
    since: Option<Duration>,
    pilot: Pilot,
    cable: Cable,
}

impl Default for Connector {
    fn default() -> Self {
        Connector {
            report: StatusReport::default(),
            metering: ConnectorMeter::default(),
            plug: Plug {
                since: None,
                pilot: Pilot::A,
                cable: Cable::Unknown,
            },
            authorized: None,
            finishing: false,
            offer: None,
            relay: false,
        }
    }
}

impl Connector {
    // The status reported.

    /// The last status reported.
    pub fn reported(&self) -> Option<&Reported> {
        self.report.reported.as_ref()
    }

    /// The status last reported is this one.
    pub fn report(&mut self, reported: Reported) {
        self.report.reported = Some(reported);
    }

    /// The changed status held back, and since when.
    pub fn held(&self) -> Option<&(Reported, Duration)> {
        self.report.held.as_ref()
    }

    /// Holds a changed status back from `since`.
    pub fn hold(&mut self, status: Reported, since: Duration) {
        self.report.held = Some((status, since));
    }

    /// The status held back, no longer held.
    pub fn take_held(&mut self) -> Option<(Reported, Duration)> {
        self.report.held.take()
    }

    // The meter.

    /// The last reading of the meter.
    pub fn reading(&self) -> Option<&MeterReading> {
        self.metering.reading.as_ref()
    }

    pub fn record_reading(&mut self, reading: MeterReading) {
        self.metering.reading = Some(reading);
    }

    /// A triggered sample at this register; the register at the previous one.
    pub fn sampled_at(&mut self, register: i64) -> Option<i64> {
        self.metering.sampled_register.replace(register)
    }

    /// When the next periodic sample of the transaction is due.
    pub fn next_sample(&self) -> Option<Duration> {
        self.metering.next_sample
    }

    pub fn sample_due(&self, now: Duration) -> bool {
        self.metering.next_sample.is_some_and(|t| now >= t)
    }

    /// The next periodic sample is due then (`None`: none).
    pub fn schedule_sample(&mut self, at: Option<Duration>) {
        self.metering.next_sample = at;
    }

    // The plug, the pilot and the cable.

    /// Since when a plug is in.
    pub fn plugged_since(&self) -> Option<Duration> {
        self.plug.since
    }

    pub fn is_plugged(&self) -> bool {
        self.plug.since.is_some()
    }

    /// A plug is in (since `now`, unless it already was), or out.
    pub fn plug(&mut self, plugged: bool, now: Duration) {
        self.plug.since = plugged.then_some(self.plug.since.unwrap_or(now));
    }

    /// A plug still in counts from `now`: the connector starts afresh (Preparing).
    pub fn replug(&mut self, now: Duration) {
        if let Some(since) = self.plug.since.as_mut() {
            *since = now;
        }
    }

    /// The plug came out: nothing is known of the next cable, and the pilot is back to A.
    pub fn unplugged(&mut self) {
        self.plug.cable = Cable::Unknown;
        self.plug.pilot = Pilot::A;
    }

    pub fn pilot(&self) -> Pilot {
        self.plug.pilot
    }

    pub fn set_pilot(&mut self, pilot: Pilot) {
        self.plug.pilot = pilot;
    }

    pub fn cable(&self) -> Cable {
        self.plug.cable
    }

    /// CC reads a cable good for `amps`; `None` (or no current): no valid CC resistor.
    pub fn cable_reads(&mut self, amps: Option<f64>) {
        self.plug.cable = match amps {
            Some(a) if a > 0.0 => Cable::Rated(a),
            _ => Cable::Invalid,
        };
    }

    // The card accepted for it, and the end of a transaction.

    /// The card or remote start accepted before the plug went in.
    pub fn authorized(&self) -> Option<&Authorized> {
        self.authorized.as_ref()
    }

    pub fn is_authorized(&self) -> bool {
        self.authorized.is_some()
    }

    /// An idTag is accepted for this connector until its plug goes in.
    pub fn authorize(&mut self, authorized: Authorized) {
        self.authorized = Some(authorized);
    }

    /// The acceptance lapses.
    pub fn lapse_authorization(&mut self) {
        self.authorized = None;
    }

    /// Whether a transaction ended and the plug is still in.
    pub fn is_finishing(&self) -> bool {
        self.finishing
    }

    /// No longer Finishing (a new start, the plug out, the connector made available again).
    pub fn stop_finishing(&mut self) {
        self.finishing = false;
    }

    /// A transaction started: the acceptance is used, the periodic samples start.
    pub fn transaction_started(&mut self, next_sample: Option<Duration>) {
        self.authorized = None;
        self.finishing = false;
        self.metering.next_sample = next_sample;
    }

    /// A transaction ended: no more samples; Finishing while the plug is in.
    pub fn transaction_ended(&mut self, plugged: bool) {
        self.metering.next_sample = None;
        self.finishing = plugged;
    }

    // What the hardware was told.

    /// What the pilot offers (A).
    pub fn offer(&self) -> Option<f64> {
        self.offer
    }

    pub fn relay_closed(&self) -> bool {
        self.relay
    }

    /// The hardware is told this offer and relay now.
    pub fn drive(&mut self, offer: Option<f64>, relay: bool) {
        self.offer = offer;
        self.relay = relay;
    }
}
