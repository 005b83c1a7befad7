//! A site's terms (its capacity, the schedule of lower limits, the minimum per session, the
//! fail-safe current), their validation, and the policy that divides a budget among sessions.

use super::Millis;

/// The voltage per phase a capacity in kW is converted at.
pub const VOLTS_PER_PHASE: f64 = 230.0;
/// IEC 61851 cannot signal a current below this (the PWM's lowest duty cycle).
pub const IEC_MIN_A: f64 = 6.0;
/// How long a session's measured draw must stay below its limit before the rest goes to the
/// others, and how long after a change a session's limit is not raised again, unless set.
pub const DEFAULT_SETTLE: Millis = 60_000;
/// The grants' resolution (A).
pub const RESOLUTION_A: f64 = 0.1;

const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

/// Why a site's terms are refused: the reason the API returns with a 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SiteError {
    #[error("`{0}` is required")]
    Required(&'static str),
    #[error("{0}")]
    Name(String),
    #[error("give capacity_a or capacity_kw, not both")]
    BothCapacities,
    #[error("the stored terms do not read: {0}")]
    Stored(String),
    #[error("phases must be 1 or 3, not {0}")]
    Phases(u8),
    #[error("capacity_a must be a positive number of A, not {0}")]
    Capacity(f64),
    #[error("min_a must be at least 6 A (IEC 61851 cannot signal less), not {0}")]
    Minimum(f64),
    #[error("capacity_a {capacity} is below min_a {min}: no session could charge")]
    CapacityBelowMinimum { capacity: f64, min: f64 },
    #[error("failsafe_a must be between 0 and capacity_a, not {0}")]
    Failsafe(f64),
    #[error("settle must be between 0 and 3600000 ms, not {0}")]
    Settle(Millis),
    #[error("schedule period {index}: {reason}")]
    Period { index: usize, reason: String },
    #[error("schedule periods {first} and {second} overlap")]
    Overlap { first: usize, second: usize },
    #[error("schedule covers the whole {cycle} but has a gap from minute {from} to minute {to}")]
    Gap {
        cycle: &'static str,
        from: u32,
        to: u32,
    },
    #[error(
        "{connectors} connectors at the fail-safe {failsafe} A draw {total} A, above the lowest capacity {lowest} A"
    )]
    FailsafeOverload {
        connectors: usize,
        failsafe: f64,
        total: f64,
        lowest: f64,
    },
}

/// Whether a schedule repeats every day or every week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cycle {
    /// Minutes from 00:00 UTC (0..=1440).
    Daily,
    /// Minutes from Monday 00:00 UTC (0..=10080).
    Weekly,
}

impl Cycle {
    fn minutes(self) -> u32 {
        match self {
            Cycle::Daily => MINUTES_PER_DAY,
            Cycle::Weekly => MINUTES_PER_WEEK,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cycle::Daily => "day",
            Cycle::Weekly => "week",
        }
    }

    /// The minute of the cycle at `now`, and when that cycle began.
    fn position(self, now: Millis) -> (u32, Millis) {
        // The epoch (1970-01-01) was a Thursday: Monday 00:00 came 3 days before it.
        let offset = match self {
            Cycle::Daily => 0,
            Cycle::Weekly => 3 * Millis::from(MINUTES_PER_DAY) * 60_000,
        };
        let length = Millis::from(self.minutes()) * 60_000;
        let into = (now + offset).rem_euclid(length);
        ((into / 60_000) as u32, now - into)
    }
}

/// A lower limit for part of the cycle: from minute `start` (included) to `end` (excluded).
/// A period over midnight (or over Monday 00:00 for a weekly one) is written as two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    pub start: u32,
    pub end: u32,
    pub limit_a: f64,
}

/// Lower limits by time of day or of week (UTC). Outside its periods the site's capacity
/// applies; a schedule that says it covers the whole cycle must have no gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    cycle: Cycle,
    /// Sorted by start, without overlap.
    periods: Vec<Period>,
}

impl Schedule {
    /// The schedule of these periods, refused with the reason when a period is empty, outside
    /// the cycle or overlaps another, when a limit is negative or above the site's capacity,
    /// or when `covers_all` and the periods leave a gap.
    pub fn new(
        cycle: Cycle,
        periods: Vec<Period>,
        covers_all: bool,
        capacity_a: f64,
    ) -> Result<Schedule, SiteError> {
        let length = cycle.minutes();
        for (index, p) in periods.iter().enumerate() {
            let reason = if p.start >= p.end {
                Some(format!("start {} is not before end {}", p.start, p.end))
            } else if p.end > length {
                Some(format!(
                    "end {} is past the {}'s {length} minutes",
                    p.end,
                    cycle.name()
                ))
            } else if !(p.limit_a >= 0.0 && p.limit_a <= capacity_a) {
                Some(format!(
                    "limit_a {} is not between 0 and capacity_a {capacity_a}",
                    p.limit_a
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(SiteError::Period { index, reason });
            }
        }
        let mut order: Vec<usize> = (0..periods.len()).collect();
        order.sort_by_key(|&i| periods[i].start);
        for pair in order.windows(2) {
            if periods[pair[1]].start < periods[pair[0]].end {
                return Err(SiteError::Overlap {
                    first: pair[0].min(pair[1]),
                    second: pair[0].max(pair[1]),
                });
            }
        }
        let periods: Vec<Period> = order.iter().map(|&i| periods[i]).collect();
        if covers_all {
            let mut reached = 0;
            for p in periods.iter().chain(std::iter::once(&Period {
                start: length,
                end: length,
                limit_a: 0.0,
            })) {
                if p.start > reached {
                    return Err(SiteError::Gap {
                        cycle: cycle.name(),
                        from: reached,
                        to: p.start,
                    });
                }
                reached = p.end;
            }
        }
        Ok(Schedule { cycle, periods })
    }

    /// The limit in force at `now`, if a period covers it.
    fn limit_at(&self, now: Millis) -> Option<f64> {
        let (minute, _) = self.cycle.position(now);
        self.periods
            .iter()
            .find(|p| p.start <= minute && minute < p.end)
            .map(|p| p.limit_a)
    }

    /// The first instant after `now` where a period starts or ends.
    fn next_boundary(&self, now: Millis) -> Option<Millis> {
        let (_, cycle_start) = self.cycle.position(now);
        let length = Millis::from(self.cycle.minutes()) * 60_000;
        [cycle_start, cycle_start + length]
            .into_iter()
            .flat_map(|base| {
                self.periods.iter().flat_map(move |p| {
                    [
                        base + Millis::from(p.start) * 60_000,
                        base + Millis::from(p.end) * 60_000,
                    ]
                })
            })
            .filter(|&t| t > now)
            .min()
    }

    fn lowest_limit(&self) -> Option<f64> {
        self.periods.iter().map(|p| p.limit_a).reduce(f64::min)
    }
}

/// A site's terms: what its grid connection gives and how it is shared.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    capacity_a: f64,
    phases: u8,
    min_a: f64,
    failsafe_a: f64,
    schedule: Option<Schedule>,
    settle: Millis,
}

impl Site {
    /// A site of `capacity_a` A per phase on `phases` (1 or 3) phases; the minimum per session
    /// 6 A, the fail-safe current 0 A (a pile that lost its connection starts no charge), the
    /// settling time [`DEFAULT_SETTLE`], no schedule.
    pub fn new(capacity_a: f64, phases: u8) -> Result<Site, SiteError> {
        if phases != 1 && phases != 3 {
            return Err(SiteError::Phases(phases));
        }
        if !(capacity_a.is_finite() && capacity_a > 0.0) {
            return Err(SiteError::Capacity(capacity_a));
        }
        if capacity_a < IEC_MIN_A {
            return Err(SiteError::CapacityBelowMinimum {
                capacity: capacity_a,
                min: IEC_MIN_A,
            });
        }
        Ok(Site {
            capacity_a,
            phases,
            min_a: IEC_MIN_A,
            failsafe_a: 0.0,
            schedule: None,
            settle: DEFAULT_SETTLE,
        })
    }

    /// A site whose capacity is given in kW: converted to A per phase at 230 V per phase
    /// (`kW × 1000 / (230 × phases)`).
    pub fn from_kw(kw: f64, phases: u8) -> Result<Site, SiteError> {
        let per_phase = kw * 1000.0 / (VOLTS_PER_PHASE * f64::from(phases.max(1)));
        Site::new(per_phase, phases)
    }

    /// With this minimum per session (at least 6 A, at most the capacity).
    pub fn with_min(mut self, min_a: f64) -> Result<Site, SiteError> {
        if !(min_a.is_finite() && min_a >= IEC_MIN_A) {
            return Err(SiteError::Minimum(min_a));
        }
        if min_a > self.capacity_a {
            return Err(SiteError::CapacityBelowMinimum {
                capacity: self.capacity_a,
                min: min_a,
            });
        }
        self.min_a = min_a;
        Ok(self)
    }

    /// With this fail-safe current: what a pile's TxDefaultProfile allows, so what a pile that
    /// lost its connection (or a session no profile reached yet) may draw.
    pub fn with_failsafe(mut self, failsafe_a: f64) -> Result<Site, SiteError> {
        if !(failsafe_a.is_finite() && (0.0..=self.capacity_a).contains(&failsafe_a)) {
            return Err(SiteError::Failsafe(failsafe_a));
        }
        self.failsafe_a = failsafe_a;
        Ok(self)
    }

    /// With this schedule of lower limits (made with [`Schedule::new`]).
    pub fn with_schedule(mut self, schedule: Schedule) -> Site {
        self.schedule = Some(schedule);
        self
    }

    /// With this settling time (0 to an hour).
    pub fn with_settle(mut self, settle: Millis) -> Result<Site, SiteError> {
        if !(0..=3_600_000).contains(&settle) {
            return Err(SiteError::Settle(settle));
        }
        self.settle = settle;
        Ok(self)
    }

    /// Whether `connectors` connectors drawing the fail-safe current at once stay within the
    /// lowest capacity: refused otherwise, since piles that lose their connection could then
    /// overload the site. The API checks it when a pile joins a site.
    pub fn check_connectors(&self, connectors: usize) -> Result<(), SiteError> {
        let total = self.failsafe_a * connectors as f64;
        let lowest = self.lowest_capacity();
        if total > lowest + 1e-9 {
            return Err(SiteError::FailsafeOverload {
                connectors,
                failsafe: self.failsafe_a,
                total,
                lowest,
            });
        }
        Ok(())
    }

    pub fn capacity_a(&self) -> f64 {
        self.capacity_a
    }

    pub fn phases(&self) -> u8 {
        self.phases
    }

    pub fn min_a(&self) -> f64 {
        self.min_a
    }

    pub fn failsafe_a(&self) -> f64 {
        self.failsafe_a
    }

    pub fn settle(&self) -> Millis {
        self.settle
    }

    /// The capacity in force at `now`: the schedule's limit where a period covers it, the
    /// site's capacity otherwise.
    pub fn capacity_at(&self, now: Millis) -> f64 {
        self.schedule
            .as_ref()
            .and_then(|s| s.limit_at(now))
            .unwrap_or(self.capacity_a)
    }

    /// The lowest capacity in force at any instant from `from` to `to` (both included).
    pub fn lowest_between(&self, from: Millis, to: Millis) -> f64 {
        let mut lowest = self.capacity_at(from);
        let mut at = from;
        while let Some(next) = self.next_change(at) {
            if next > to {
                break;
            }
            lowest = lowest.min(self.capacity_at(next));
            at = next;
        }
        lowest
    }

    /// The next instant after `now` where the schedule changes the capacity.
    pub fn next_change(&self, now: Millis) -> Option<Millis> {
        self.schedule.as_ref().and_then(|s| s.next_boundary(now))
    }

    /// The lowest capacity ever in force.
    pub fn lowest_capacity(&self) -> f64 {
        self.schedule
            .as_ref()
            .and_then(Schedule::lowest_limit)
            .map_or(self.capacity_a, |l| l.min(self.capacity_a))
    }

    /// The least an admitted session is granted: the minimum, and no less than the fail-safe
    /// (what it would draw if its pile lost the connection), rounded up to 0.1 A.
    pub(super) fn floor_a(&self) -> f64 {
        let floor = self.min_a.max(self.failsafe_a) / RESOLUTION_A;
        (floor - 1e-6).ceil() / (1.0 / RESOLUTION_A)
    }
}

/// One session's claim on the budget.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim {
    /// Higher is served first.
    pub group: u32,
    pub arrival: Millis,
    pub transaction: i64,
    /// The most it can use: the pile's maximum, or what it draws once settled below its share.
    pub cap: f64,
}

/// Divides `budget` among `claims`: in order of group (higher first), then of arrival, each
/// session is admitted while every admitted one can get `floor` and every queued one keeps
/// `reserve` (what it would draw if its pile lost the connection); the rest goes to the
/// highest group first, equal within a group up to each one's cap, then to the next group.
/// None: queued. Grants are rounded down to 0.1 A.
pub(super) fn divide(budget: f64, floor: f64, reserve: f64, claims: &[Claim]) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..claims.len()).collect();
    order.sort_by_key(|&i| {
        (
            std::cmp::Reverse(claims[i].group),
            claims[i].arrival,
            claims[i].transaction,
        )
    });
    let n = claims.len();
    let admitted = (0..=n)
        .rev()
        .find(|&k| k as f64 * floor + (n - k) as f64 * reserve <= budget + 1e-9)
        .unwrap_or(0);
    let mut grants = vec![None; n];
    for &i in &order[..admitted] {
        grants[i] = Some(floor);
    }
    let mut surplus = budget - admitted as f64 * floor - (n - admitted) as f64 * reserve;
    let mut start = 0;
    while start < admitted && surplus > 1e-9 {
        let group = claims[order[start]].group;
        let end = start
            + order[start..admitted]
                .iter()
                .take_while(|&&i| claims[i].group == group)
                .count();
        let members = &order[start..end];
        let level = water_level(surplus, members.iter().map(|&i| claims[i].cap - floor));
        for &i in members {
            let extra = level.min((claims[i].cap - floor).max(0.0));
            surplus -= extra;
            grants[i] = Some(floor + extra);
        }
        start = end;
    }
    grants
        .into_iter()
        .map(|g| g.map(|a| ((a / RESOLUTION_A) + 1e-6).floor() / (1.0 / RESOLUTION_A)))
        .collect()
}

/// The level L where the sum of min(room, L) over the rooms is `amount` (or the highest room
/// when they are all filled).
fn water_level(amount: f64, rooms: impl Iterator<Item = f64>) -> f64 {
    let mut rooms: Vec<f64> = rooms.map(|r| r.max(0.0)).collect();
    rooms.sort_by(f64::total_cmp);
    let mut left = amount;
    let mut below = 0.0;
    for (k, &room) in rooms.iter().enumerate() {
        let open = (rooms.len() - k) as f64;
        let step = room - below;
        if step * open >= left {
            return below + left / open;
        }
        left -= step * open;
        below = room;
    }
    below
}
