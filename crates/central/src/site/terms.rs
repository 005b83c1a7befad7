//! A site's terms as the API takes them and the store keeps them (the schedule and the priority
//! groups as JSON), checked into the allocator's [`Site`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::policy::{Cycle, Period, Schedule, Site, SiteError, DEFAULT_SETTLE, IEC_MIN_A};
use crate::store::{Millis, SiteRow};

/// The longest name of a site.
pub const MAX_NAME: usize = 100;

/// Whether a schedule repeats every day or every week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CycleName {
    /// Minutes from 00:00 UTC (0 to 1440).
    Daily,
    /// Minutes from Monday 00:00 UTC (0 to 10080).
    Weekly,
}

/// A lower limit from minute `start` (included) to `end` (excluded) of the day or week. A period
/// over midnight is written as two.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodTerms {
    pub start: u32,
    pub end: u32,
    /// A per phase while the period lasts (at most the site's capacity).
    pub limit_a: f64,
}

/// Lower limits by time of day or week (UTC); outside its periods the capacity applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleTerms {
    pub cycle: CycleName,
    pub periods: Vec<PeriodTerms>,
    /// The periods cover the whole day or week: a gap between them is refused.
    #[serde(default)]
    pub covers_all: bool,
}

/// A site's terms, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub name: String,
    pub capacity_a: f64,
    pub phases: u8,
    pub min_a: f64,
    pub failsafe_a: f64,
    pub settle_ms: Millis,
    pub schedule: Option<ScheduleTerms>,
    /// idTag to priority group (higher first); an idTag not named is in group 0.
    pub priorities: BTreeMap<String, u32>,
}

/// The terms a request gives: each absent one keeps what the site had, or its default.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TermsInput {
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// A per phase the grid connection gives.
    pub capacity_a: Option<f64>,
    /// Or the capacity in kW, converted at 230 V per phase.
    pub capacity_kw: Option<f64>,
    /// 1 or 3 (default 1).
    pub phases: Option<u8>,
    /// The least a session is given, or it waits (default 6 A: IEC 61851 signals no less).
    pub min_a: Option<f64>,
    /// What a pile may draw per connector without the central: its TxDefaultProfile, sent
    /// at every boot (default 0 A).
    pub failsafe_a: Option<f64>,
    /// Seconds a session's draw stays below its limit before the rest goes to others, and
    /// after a change before its limit is raised again (default 60).
    pub settle_s: Option<u32>,
    /// Lower limits by time of day or week; null removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable)]
    pub schedule: Option<Option<ScheduleTerms>>,
    /// idTag to priority group: a higher group is served first.
    pub priorities: Option<BTreeMap<String, u32>>,
}

/// A field given as null is `Some(None)`, an absent one `None`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl Terms {
    /// New terms from a request, with the defaults; refused with the reason.
    pub fn create(input: TermsInput) -> Result<Terms, SiteError> {
        let name = input.name.clone().ok_or(SiteError::Required("name"))?;
        if input.capacity_a.is_none() && input.capacity_kw.is_none() {
            return Err(SiteError::Required("capacity_a or capacity_kw"));
        }
        let defaults = Terms {
            name,
            capacity_a: 0.0,
            phases: 1,
            min_a: IEC_MIN_A,
            failsafe_a: 0.0,
            settle_ms: DEFAULT_SETTLE,
            schedule: None,
            priorities: BTreeMap::new(),
        };
        defaults.change(input)
    }

    /// These terms with a request's changes; refused with the reason.
    pub fn change(&self, input: TermsInput) -> Result<Terms, SiteError> {
        let phases = input.phases.unwrap_or(self.phases);
        let capacity_a = match (input.capacity_a, input.capacity_kw) {
            (Some(_), Some(_)) => return Err(SiteError::BothCapacities),
            (Some(a), None) => a,
            (None, Some(kw)) => {
                let a = kw * 1000.0 / (super::policy::VOLTS_PER_PHASE * f64::from(phases.max(1)));
                (a * 10.0).floor() / 10.0
            }
            (None, None) => self.capacity_a,
        };
        let terms = Terms {
            name: input.name.unwrap_or_else(|| self.name.clone()),
            capacity_a,
            phases,
            min_a: input.min_a.unwrap_or(self.min_a),
            failsafe_a: input.failsafe_a.unwrap_or(self.failsafe_a),
            settle_ms: input
                .settle_s
                .map_or(self.settle_ms, |s| Millis::from(s) * 1000),
            schedule: input.schedule.unwrap_or_else(|| self.schedule.clone()),
            priorities: input.priorities.unwrap_or_else(|| self.priorities.clone()),
        };
        terms.site()?;
        Ok(terms)
    }

    /// The allocator's site of these terms, or why they are refused.
    pub fn site(&self) -> Result<Site, SiteError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(SiteError::Name(format!(
                "`name` must be 1 to {MAX_NAME} characters"
            )));
        }
        let mut site = Site::new(self.capacity_a, self.phases)?
            .with_min(self.min_a)?
            .with_failsafe(self.failsafe_a)?
            .with_settle(self.settle_ms)?;
        if let Some(s) = &self.schedule {
            let cycle = match s.cycle {
                CycleName::Daily => Cycle::Daily,
                CycleName::Weekly => Cycle::Weekly,
            };
            let periods = s
                .periods
                .iter()
                .map(|p| Period {
                    start: p.start,
                    end: p.end,
                    limit_a: p.limit_a,
                })
                .collect();
            site = site.with_schedule(Schedule::new(
                cycle,
                periods,
                s.covers_all,
                self.capacity_a,
            )?);
        }
        Ok(site)
    }

    /// The priority group of an idTag (0 when it is not named).
    pub fn group_of(&self, id_tag: Option<&str>) -> u32 {
        id_tag
            .and_then(|t| self.priorities.get(t))
            .copied()
            .unwrap_or(0)
    }

    /// The terms a stored row holds.
    pub fn from_row(row: &SiteRow) -> Result<Terms, SiteError> {
        let stored = |e: serde_json::Error| SiteError::Stored(e.to_string());
        Ok(Terms {
            name: row.name.clone(),
            capacity_a: row.capacity_a,
            phases: u8::try_from(row.phases).unwrap_or(0),
            min_a: row.min_a,
            failsafe_a: row.failsafe_a,
            settle_ms: row.settle_ms,
            schedule: row
                .schedule
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(stored)?,
            priorities: row
                .priorities
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(stored)?
                .unwrap_or_default(),
        })
    }

    /// The row that keeps these terms.
    pub fn to_row(&self, id: i64, created_at: Millis) -> SiteRow {
        SiteRow {
            id,
            name: self.name.trim().to_string(),
            capacity_a: self.capacity_a,
            phases: i64::from(self.phases),
            min_a: self.min_a,
            failsafe_a: self.failsafe_a,
            settle_ms: self.settle_ms,
            schedule: self
                .schedule
                .as_ref()
                .map(|s| serde_json::to_string(s).expect("a schedule serializes")),
            priorities: (!self.priorities.is_empty()).then(|| {
                serde_json::to_string(&self.priorities).expect("the priorities serialize")
            }),
            created_at,
        }
    }
}

/// The current a MeterValue element reports (its sampledValue array as JSON): the highest
/// Current.Import of its phases, in A (none when it has none).
pub fn current_import_a(sampled: &str) -> Option<f64> {
    let values: Vec<serde_json::Value> = serde_json::from_str(sampled).ok()?;
    values
        .iter()
        .filter(|v| v["measurand"] == "Current.Import")
        .filter(|v| v["format"] != "SignedData")
        .filter_map(|v| v["value"].as_str()?.trim().parse::<f64>().ok())
        .filter(|a| a.is_finite())
        .reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> TermsInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn terms_take_their_defaults_and_changes_keep_the_rest() {
        let t = Terms::create(input(r#"{"name":"Depot","capacity_a":63}"#)).unwrap();
        assert_eq!(
            (t.phases, t.min_a, t.failsafe_a, t.settle_ms, &t.schedule),
            (1, 6.0, 0.0, 60_000, &None)
        );
        let t = t
            .change(input(
                r#"{"failsafe_a":6,"schedule":{"cycle":"daily","periods":[{"start":1020,"end":1260,"limit_a":32}]}}"#,
            ))
            .unwrap();
        assert_eq!((t.capacity_a, t.failsafe_a), (63.0, 6.0));
        assert_eq!(t.site().unwrap().lowest_capacity(), 32.0);
        let row = t.to_row(7, 1_000);
        assert_eq!(Terms::from_row(&row).unwrap(), t);
        // null removes the schedule; absent keeps it.
        assert!(t.change(input("{}")).unwrap().schedule.is_some());
        assert!(t
            .change(input(r#"{"schedule":null}"#))
            .unwrap()
            .schedule
            .is_none());
        let kw = Terms::create(input(r#"{"name":"K","capacity_kw":22,"phases":3}"#)).unwrap();
        assert_eq!(kw.capacity_a, 31.8);
        let t = t.change(input(r#"{"priorities":{"FLEET-1":2}}"#)).unwrap();
        assert_eq!((t.group_of(Some("FLEET-1")), t.group_of(Some("X"))), (2, 0));
    }

    #[test]
    fn bad_terms_are_refused_with_the_reason() {
        let refused = |json: &str| Terms::create(input(json)).unwrap_err().to_string();
        assert_eq!(
            refused(r#"{"name":"A","capacity_a":10,"min_a":16}"#),
            "capacity_a 10 is below min_a 16: no session could charge"
        );
        assert_eq!(
            refused(
                r#"{"name":"A","capacity_a":63,"schedule":{"cycle":"daily","covers_all":true,"periods":[{"start":0,"end":600,"limit_a":32},{"start":660,"end":1440,"limit_a":63}]}}"#
            ),
            "schedule covers the whole day but has a gap from minute 600 to minute 660"
        );
        assert_eq!(
            refused(
                r#"{"name":"A","capacity_a":63,"schedule":{"cycle":"weekly","periods":[{"start":0,"end":600,"limit_a":32},{"start":500,"end":900,"limit_a":20}]}}"#
            ),
            "schedule periods 0 and 1 overlap"
        );
        assert_eq!(
            refused(r#"{"name":" ","capacity_a":63}"#),
            "`name` must be 1 to 100 characters"
        );
        assert!(refused(r#"{"name":"A"}"#).contains("capacity_a"));
        assert!(refused(r#"{"name":"A","capacity_a":63,"capacity_kw":40}"#).contains("not both"));
        assert!(refused(r#"{"name":"A","capacity_a":63,"phases":2}"#).contains("phases"));
    }

    #[test]
    fn the_current_is_the_highest_phase_of_current_import() {
        let sampled = r#"[{"value":"1200","measurand":"Energy.Active.Import.Register"},
            {"value":"15.5","measurand":"Current.Import","phase":"L1","unit":"A"},
            {"value":"16.1","measurand":"Current.Import","phase":"L2","unit":"A"}]"#;
        assert_eq!(current_import_a(sampled), Some(16.1));
        assert_eq!(current_import_a(r#"[{"value":"100"}]"#), None);
        assert_eq!(current_import_a("not json"), None);
    }
}
