//! Time for the sans-I/O core: a monotonic instant for timers, and the wall clock derived
//! from it, which the central system may correct (BootNotification, Heartbeat).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ocpp::Timestamp;

/// The wall clock of the pile: the time at monotonic zero, corrected when the central system
/// tells the time.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    at_zero: DateTime<Utc>,
}

impl WallClock {
    /// `wall` is the wall-clock time at monotonic instant `mono`.
    pub fn new(wall: DateTime<Utc>, mono: Duration) -> Self {
        WallClock {
            at_zero: wall - TimeDelta::from_std(mono).unwrap_or_default(),
        }
    }

    pub fn at(&self, mono: Duration) -> Timestamp {
        Timestamp::from_utc(self.at_zero + TimeDelta::from_std(mono).unwrap_or_default())
    }

    /// Sets the clock so that `mono` is `wall`.
    pub fn sync(&mut self, wall: Timestamp, mono: Duration) {
        *self = WallClock::new(wall.as_utc(), mono);
    }
}
