//! What a site's allocator answers: the limits to set, the decisions with their trigger and
//! reason (the allocations log's `why`), and its sessions as the site's page shows them.

use super::allocator::Unit;
use super::Millis;

/// A limit to set: the caller sends a SetChargingProfile TxProfile for the transaction at the
/// pile's max stack level, with `limit` in `unit`.
#[derive(Debug, Clone, PartialEq)]
pub struct SetLimit {
    pub pile: String,
    pub connector: u32,
    pub transaction: i64,
    pub stack_level: u32,
    pub amps: f64,
    pub unit: Unit,
    /// `amps` in `unit`: in W, `amps × 230 × phases`.
    pub limit: f64,
    /// The site's phases (the profile's numberPhases).
    pub phases: u8,
}

/// What made the allocator decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Arrival,
    Departure,
    Measurement,
    Accepted,
    Rejected,
    Offline,
    Online,
    Time,
    PileJoined,
    PileLeft,
    /// The site's terms changed (its capacity, schedule, minimum, fail-safe).
    Terms,
}

/// Why a session got what it got.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reason {
    /// An equal share among the `among` sessions of its group served at that level.
    Share { group: u32, among: usize },
    /// Limited by its pile's maximum.
    PileMaximum,
    /// It drew less than offered for the settling time: capped at `cap` A (its draw and a
    /// margin), the rest goes to others.
    DrawsLess { cap: f64 },
    /// Waits: the capacity cannot give it the minimum; `ahead` sessions wait before it.
    Queued { ahead: usize },
    /// Its pile rejected the profile: accounted at the last limit it confirmed, or the
    /// fail-safe.
    Rejected,
    /// Its pile is offline: accounted at its last confirmed limit or the fail-safe, the higher.
    Offline,
    /// Its pile takes no TxProfile: accounted at its maximum.
    Unmanaged,
}

/// One decision, for the allocations log.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub time: Millis,
    pub transaction: i64,
    /// What the session is granted (for a held session: what it is accounted at).
    pub granted_a: f64,
    pub trigger: Trigger,
    pub reason: Reason,
}

impl Decision {
    /// The log's `why`, in words.
    pub fn why(&self) -> String {
        let trigger = format!("{:?}", self.trigger).to_lowercase();
        let reason = match self.reason {
            Reason::Share { group, among } => {
                format!("equal share among {among} sessions of group {group}")
            }
            Reason::PileMaximum => "the pile's maximum".to_string(),
            Reason::DrawsLess { cap } => {
                format!("draws less than offered: capped at {cap:.1} A")
            }
            Reason::Queued { ahead } => format!("queued, {ahead} ahead"),
            Reason::Rejected => {
                "profile rejected: held at its last confirmed or fail-safe limit".to_string()
            }
            Reason::Offline => {
                "pile offline: held at its last confirmed or fail-safe limit".to_string()
            }
            Reason::Unmanaged => "pile takes no TxProfile: held at its maximum".to_string(),
        };
        format!("{trigger}: {reason}")
    }
}

/// What an event led to: the limits to set, lowerings first, and the decisions made.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reaction {
    pub commands: Vec<SetLimit>,
    pub decisions: Vec<Decision>,
}

/// A session as the site's page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionView {
    pub pile: String,
    pub connector: u32,
    pub transaction: i64,
    /// What it may draw, as accounted.
    pub granted_a: f64,
    /// Its share in the allocator's plan (its limit follows within [`STEP_A`]); None while
    /// it is held (offline, rejected, unmanaged).
    pub share_a: Option<f64>,
    /// Why it has that share, or why it is held.
    pub reason: Option<Reason>,
    pub measured_a: Option<f64>,
    pub queued: bool,
}
