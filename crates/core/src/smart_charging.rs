//! Charging profiles (OCPP 1.6 §3.13) as pure functions of time: when a profile is in force,
//! what it limits to, when that may change next, and the checks a profile must pass to be
//! installed. Times are milliseconds since the Unix epoch.

use ocpp::{
    ChargingProfile, ChargingProfileKind, ChargingProfilePurpose, ChargingRateUnit, RecurrencyKind,
};
use serde::{Deserialize, Serialize};

/// The pile's supply voltage, to turn a limit in W into one in A (the pile is single-phase).
pub const VOLTS: f64 = 230.0;

/// Below this the control pilot cannot signal a current (IEC 61851-1): a lower limit means no
/// charging.
pub const MIN_PILOT_AMPS: f64 = 6.0;

/// A profile installed for a connector (0: the whole pile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    pub connector: u32,
    pub profile: ChargingProfile,
}

const DAY_MS: i64 = 86_400_000;
const WEEK_MS: i64 = 7 * DAY_MS;

/// Where the schedule's period 0 begins at time `t` (the current recurrence for a recurring
/// profile), or `None` when the profile has no start yet (a relative one without a
/// transaction).
fn schedule_start(p: &ChargingProfile, t: i64, tx_start: Option<i64>) -> Option<i64> {
    let start = p.charging_schedule.start_schedule.map(|s| s.millis());
    match p.charging_profile_kind {
        ChargingProfileKind::Absolute => start,
        ChargingProfileKind::Relative => tx_start,
        ChargingProfileKind::Recurring => {
            let start = start?;
            let cycle = match p.recurrency_kind {
                Some(RecurrencyKind::Weekly) => WEEK_MS,
                _ => DAY_MS,
            };
            Some(start + (t - start).div_euclid(cycle) * cycle)
        }
        ChargingProfileKind::Unrecognized(_) => None,
    }
}

/// The limit a profile sets at `t` (value and unit), or `None` when it is not in force then.
pub fn limit_at(
    p: &ChargingProfile,
    t: i64,
    tx_start: Option<i64>,
) -> Option<(f64, ChargingRateUnit)> {
    if p.valid_from.is_some_and(|v| t < v.millis()) || p.valid_to.is_some_and(|v| t >= v.millis()) {
        return None;
    }
    let start = schedule_start(p, t, tx_start)?;
    let elapsed = t - start;
    if elapsed < 0 {
        return None;
    }
    let schedule = &p.charging_schedule;
    if schedule
        .duration
        .is_some_and(|d| elapsed >= i64::from(d) * 1000)
    {
        return None;
    }
    let period = schedule
        .charging_schedule_period
        .iter()
        .take_while(|period| i64::from(period.start_period) * 1000 <= elapsed)
        .last()?;
    Some((period.limit.as_f64(), schedule.charging_rate_unit.clone()))
}

/// The first instant after `t` at which the profile's limit may change.
pub fn next_change(p: &ChargingProfile, t: i64, tx_start: Option<i64>) -> Option<i64> {
    let mut candidates: Vec<i64> = Vec::new();
    candidates.extend(p.valid_from.map(|v| v.millis()));
    candidates.extend(p.valid_to.map(|v| v.millis()));
    let schedule = &p.charging_schedule;
    let cycle = match (&p.charging_profile_kind, &p.recurrency_kind) {
        (ChargingProfileKind::Recurring, Some(RecurrencyKind::Weekly)) => Some(WEEK_MS),
        (ChargingProfileKind::Recurring, _) => Some(DAY_MS),
        _ => None,
    };
    if let Some(start) = schedule_start(p, t, tx_start) {
        // This recurrence, and the next one for a recurring profile.
        let starts = [Some(start), cycle.map(|c| start + c)];
        for s in starts.into_iter().flatten() {
            candidates.push(s);
            candidates.extend(
                schedule
                    .charging_schedule_period
                    .iter()
                    .map(|period| s + i64::from(period.start_period) * 1000),
            );
            candidates.extend(schedule.duration.map(|d| s + i64::from(d) * 1000));
        }
    }
    candidates.into_iter().filter(|c| *c > t).min()
}

/// A limit in A for this pile.
pub fn amps(limit: f64, unit: &ChargingRateUnit) -> f64 {
    match unit {
        ChargingRateUnit::W => limit / VOLTS,
        _ => limit,
    }
}

/// Why a profile cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("stackLevel {0} is outside 0..={1}")]
    StackLevel(i32, i64),
    #[error("the charging rate unit is not one this pile takes")]
    Unit,
    #[error("the schedule needs 1 to {0} periods, the first at 0 and each after the one before")]
    Periods(i64),
    #[error(
        "an absolute or recurring profile needs startSchedule, a recurring one recurrencyKind"
    )]
    Start,
    #[error("this purpose, kind or recurrency is not known")]
    Unknown,
}

/// The checks of SetChargingProfile that need no knowledge of the pile's state.
pub fn check(
    p: &ChargingProfile,
    max_stack_level: i64,
    max_periods: i64,
    allowed_units: &str,
) -> Result<(), ProfileError> {
    if p.stack_level < 0 || i64::from(p.stack_level) > max_stack_level {
        return Err(ProfileError::StackLevel(p.stack_level, max_stack_level));
    }
    let schedule = &p.charging_schedule;
    let unit = match schedule.charging_rate_unit {
        ChargingRateUnit::A => "Current",
        ChargingRateUnit::W => "Power",
        ChargingRateUnit::Unrecognized(_) => return Err(ProfileError::Unit),
    };
    if !allowed_units.split(',').any(|u| u.trim() == unit) {
        return Err(ProfileError::Unit);
    }
    let periods = &schedule.charging_schedule_period;
    let ordered = periods
        .windows(2)
        .all(|w| w[0].start_period < w[1].start_period);
    if periods.is_empty()
        || periods.len() as i64 > max_periods
        || periods[0].start_period != 0
        || !ordered
        || periods.iter().any(|period| period.limit.tenths() < 0)
    {
        return Err(ProfileError::Periods(max_periods));
    }
    if matches!(
        p.charging_profile_purpose,
        ChargingProfilePurpose::Unrecognized(_)
    ) || matches!(p.recurrency_kind, Some(RecurrencyKind::Unrecognized(_)))
    {
        return Err(ProfileError::Unknown);
    }
    match p.charging_profile_kind {
        ChargingProfileKind::Absolute if schedule.start_schedule.is_none() => {
            Err(ProfileError::Start)
        }
        ChargingProfileKind::Recurring
            if schedule.start_schedule.is_none() || p.recurrency_kind.is_none() =>
        {
            Err(ProfileError::Start)
        }
        ChargingProfileKind::Unrecognized(_) => Err(ProfileError::Unknown),
        _ => Ok(()),
    }
}

/// The limit (A) of the highest stack level in force at `t` among `profiles`.
pub fn stacked<'a>(
    profiles: impl Iterator<Item = &'a ChargingProfile>,
    t: i64,
    tx_start: Option<i64>,
) -> Option<f64> {
    let mut in_force: Vec<(i32, f64)> = profiles
        .filter_map(|p| limit_at(p, t, tx_start).map(|(l, u)| (p.stack_level, amps(l, &u))))
        .collect();
    in_force.sort_by_key(|(level, _)| std::cmp::Reverse(*level));
    in_force.first().map(|(_, a)| *a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocpp::{ChargingRate, ChargingSchedule, ChargingSchedulePeriod, Timestamp};

    fn profile(
        kind: ChargingProfileKind,
        start: Option<i64>,
        periods: &[(i32, f64)],
    ) -> ChargingProfile {
        ChargingProfile {
            charging_profile_id: 1,
            transaction_id: None,
            stack_level: 0,
            charging_profile_purpose: ChargingProfilePurpose::TxDefaultProfile,
            charging_profile_kind: kind,
            recurrency_kind: None,
            valid_from: None,
            valid_to: None,
            charging_schedule: ChargingSchedule {
                duration: None,
                start_schedule: start.map(|s| Timestamp::from_millis(s).unwrap()),
                charging_rate_unit: ChargingRateUnit::A,
                charging_schedule_period: periods
                    .iter()
                    .map(|(s, l)| ChargingSchedulePeriod {
                        start_period: *s,
                        limit: ChargingRate::from_f64(*l).unwrap(),
                        number_phases: None,
                    })
                    .collect(),
                min_charging_rate: None,
            },
        }
    }

    #[test]
    fn absolute_periods_and_duration() {
        let mut p = profile(
            ChargingProfileKind::Absolute,
            Some(1_000_000),
            &[(0, 16.0), (60, 8.0)],
        );
        p.charging_schedule.duration = Some(120);
        assert_eq!(limit_at(&p, 999_999, None), None);
        assert_eq!(limit_at(&p, 1_000_000, None).unwrap().0, 16.0);
        assert_eq!(limit_at(&p, 1_060_000, None).unwrap().0, 8.0);
        assert_eq!(limit_at(&p, 1_120_000, None), None);
        assert_eq!(next_change(&p, 1_000_000, None), Some(1_060_000));
        assert_eq!(next_change(&p, 1_060_000, None), Some(1_120_000));
    }

    #[test]
    fn relative_needs_a_transaction_and_recurring_repeats() {
        let p = profile(
            ChargingProfileKind::Relative,
            None,
            &[(0, 10.0), (3600, 20.0)],
        );
        assert_eq!(limit_at(&p, 5, None), None);
        assert_eq!(limit_at(&p, 3_600_000 + 7, Some(7)).unwrap().0, 20.0);
        let mut r = profile(
            ChargingProfileKind::Recurring,
            Some(0),
            &[(0, 6.0), (43_200, 32.0)],
        );
        r.recurrency_kind = Some(RecurrencyKind::Daily);
        assert_eq!(limit_at(&r, 3 * DAY_MS + 1, None).unwrap().0, 6.0);
        assert_eq!(limit_at(&r, 3 * DAY_MS + 43_200_000, None).unwrap().0, 32.0);
        assert_eq!(
            next_change(&r, 3 * DAY_MS + 43_200_000, None),
            Some(4 * DAY_MS)
        );
    }

    #[test]
    fn checks() {
        let ok = profile(ChargingProfileKind::Absolute, Some(0), &[(0, 16.0)]);
        assert_eq!(check(&ok, 8, 10, "Current,Power"), Ok(()));
        let mut p = ok.clone();
        p.stack_level = 9;
        assert!(check(&p, 8, 10, "Current,Power").is_err());
        let p = profile(ChargingProfileKind::Absolute, None, &[(0, 16.0)]);
        assert_eq!(check(&p, 8, 10, "Current,Power"), Err(ProfileError::Start));
        let p = profile(ChargingProfileKind::Absolute, Some(0), &[(10, 16.0)]);
        assert!(check(&p, 8, 10, "Current,Power").is_err());
        assert_eq!(check(&ok, 8, 10, "Power"), Err(ProfileError::Unit));
        assert_eq!(amps(2300.0, &ChargingRateUnit::W), 10.0);
    }
}
