//! Sites: piles that share a grid connection, and the allocator that divides its capacity
//! among their sessions so that what they may draw never exceeds it.
//!
//! [`Allocator`] is a state machine without I/O, like a campaign's rollout: the sessions'
//! arrivals and departures, their measured currents, the piles' answers to the profiles and
//! their connection, and the time (milliseconds, given) go in; the limits to set
//! ([`SetLimit`], lowerings before raisings) and the record of every decision ([`Decision`])
//! come out. [`policy`] holds a site's terms and the division: equal shares, priority groups
//! of idTags, the rest of a session that draws less than offered going to the others, a queue
//! for the sessions the capacity cannot give the minimum.
//!
//! What it accounts a session at, so that the sum never exceeds the capacity in force:
//! a raise from the moment it is sent (the pile may apply it before it answers), a lowering
//! only once it is confirmed (until then, the old limit); a session no profile reached yet,
//! or an idle connector, at the fail-safe (the pile's TxDefaultProfile); a pile that rejected
//! its profile at the last limit it confirmed (or the fail-safe), and not raised again until it
//! reconnects (a refused lowering: sent nothing more); an offline pile at its last confirmed
//! limit or the fail-safe, the higher (and a limit whose answer was lost, as sent); never at
//! zero unless the pile confirmed 0 A. Every session keeps room for the fail-safe (an idle
//! connector too), so that a pile losing its connection never overloads the site, provided
//! [`Site::check_connectors`] holds. What the allocator cannot lower (an offline pile, a
//! refused lowering, a pile back online less than [`LEAD`] before a schedule lowers the
//! capacity) is the only way past the capacity.
//! A schedule that lowers the capacity is met [`LEAD`] ahead, so that the lowerings are
//! confirmed by the time it is in force.

pub mod allocator;
pub mod decision;
pub mod policy;
pub mod profiles;
pub mod runtime;
pub mod terms;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use allocator::{
    AllocError, Allocator, Arrival, Decision, PileLimits, RateUnits, Reaction, Reason, SessionView,
    SetLimit, Trigger, Unit, LEAD, ROUND_TRIP, STEP_A,
};
pub use policy::{Cycle, Period, Schedule, Site, SiteError};
pub use terms::{current_import_a, Terms, TermsInput};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;
