//! Smart charging (SmartCharging profile): SetChargingProfile, ClearChargingProfile,
//! GetCompositeSchedule, and the limit the installed profiles put on what the pilot offers.
//!
//! For a connector: its TxProfile while a transaction runs, else its own TxDefaultProfile, else
//! the one of connector 0 (the highest stack level in force of that purpose); and its share of
//! the ChargePointMaxProfile (the pile's limit divided among the connectors with a transaction).

use ocpp::{
    ChargingProfile, ChargingProfilePurpose, ChargingProfileStatus, ChargingRate, ChargingRateUnit,
    ChargingSchedule, ChargingSchedulePeriod, ClearChargingProfileRequest,
    ClearChargingProfileResponse, ClearChargingProfileStatus, GetCompositeScheduleRequest,
    GetCompositeScheduleResponse, GetCompositeScheduleStatus, SetChargingProfileRequest,
    SetChargingProfileResponse, Timestamp,
};

use super::*;
use crate::smart_charging::{self as sc, Installed};

impl ChargePoint {
    fn wall_ms(&self, at: Duration) -> i64 {
        self.time.clock.at(at).millis()
    }

    fn tx_start(&self, connector: u32) -> Option<i64> {
        self.durable
            .transaction(connector)
            .map(|t| t.started.millis())
    }

    fn installed(
        &self,
        purpose: ChargingProfilePurpose,
        connector: u32,
    ) -> impl Iterator<Item = &ChargingProfile> {
        self.durable
            .profiles()
            .iter()
            .filter(move |i| {
                i.connector == connector && i.profile.charging_profile_purpose == purpose
            })
            .map(|i| &i.profile)
    }

    /// The pile's own limit at `t` (A): its ChargePointMaxProfile.
    fn pile_limit(&self, t: i64) -> Option<f64> {
        sc::stacked(
            self.installed(ChargingProfilePurpose::ChargePointMaxProfile, 0),
            t,
            None,
        )
    }

    /// What the charging profiles allow a connector at `t` (A), if they limit it at all.
    pub(super) fn profile_limit(&self, connector: u32, t: i64) -> Option<f64> {
        let tx_start = self.tx_start(connector);
        let tx = tx_start
            .and_then(|s| {
                sc::stacked(
                    self.installed(ChargingProfilePurpose::TxProfile, connector),
                    t,
                    Some(s),
                )
            })
            .or_else(|| {
                sc::stacked(
                    self.installed(ChargingProfilePurpose::TxDefaultProfile, connector),
                    t,
                    tx_start,
                )
            })
            .or_else(|| {
                sc::stacked(
                    self.installed(ChargingProfilePurpose::TxDefaultProfile, 0),
                    t,
                    tx_start,
                )
            });
        let charging = self.transaction_count().max(1) as f64;
        let share = self.pile_limit(t).map(|l| l / charging);
        match (tx, share) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The limit now, for the power path.
    pub(super) fn profile_limit_now(&self, connector: u32) -> Option<f64> {
        self.profile_limit(connector, self.wall_ms(self.time.now))
    }

    /// The start points a profile's schedule may run from: none (absolute, recurring) and the
    /// start of each running transaction (relative).
    fn schedule_starts(&self) -> Vec<Option<i64>> {
        std::iter::once(None)
            .chain(
                self.durable
                    .transactions()
                    .values()
                    .map(|tx| Some(tx.started.millis())),
            )
            .collect()
    }

    /// When a profile's limit may next change (for the timers).
    pub(super) fn next_profile_change(&self) -> Option<Duration> {
        let t = self.wall_ms(self.time.now);
        let starts = self.schedule_starts();
        self.durable
            .profiles()
            .iter()
            .flat_map(|i| {
                let own = (i.connector > 0).then(|| self.tx_start(i.connector));
                let candidates: Vec<Option<i64>> = match own {
                    Some(s) => vec![s],
                    None => starts.clone(),
                };
                candidates
                    .into_iter()
                    .filter_map(|s| sc::next_change(&i.profile, t, s))
                    .collect::<Vec<_>>()
            })
            .min()
            .map(|next| self.time.now + Duration::from_millis((next - t).max(0) as u64))
    }

    /// Checks a profile against the keys that bound it.
    fn profile_fits(&self, p: &ChargingProfile) -> bool {
        sc::check(
            p,
            self.config.int(keys::CHARGE_PROFILE_MAX_STACK_LEVEL),
            self.config.int(keys::CHARGING_SCHEDULE_MAX_PERIODS),
            self.config
                .text(keys::CHARGING_SCHEDULE_ALLOWED_CHARGING_RATE_UNIT),
        )
        .is_ok()
    }

    /// Installs a profile: the same chargingProfileId, or the same purpose and stack level on
    /// the same connector, is replaced. `false` when it would exceed
    /// MaxChargingProfilesInstalled.
    pub(super) fn install_profile(&mut self, connector: u32, profile: ChargingProfile) -> bool {
        let mut profiles: Vec<Installed> = self
            .durable
            .profiles()
            .iter()
            .filter(|i| {
                i.profile.charging_profile_id != profile.charging_profile_id
                    && !(i.connector == connector
                        && i.profile.charging_profile_purpose == profile.charging_profile_purpose
                        && i.profile.stack_level == profile.stack_level)
            })
            .cloned()
            .collect();
        profiles.push(Installed { connector, profile });
        if profiles.len() as i64 > self.config.int(keys::MAX_CHARGING_PROFILES_INSTALLED) {
            return false;
        }
        self.durable.replace_profiles(profiles);
        self.persist();
        true
    }

    /// The profile a RemoteStartTransaction may carry (FAQ 3.15: a TxProfile only).
    pub(super) fn remote_start_profile_fits(&self, p: &ChargingProfile) -> bool {
        p.charging_profile_purpose == ChargingProfilePurpose::TxProfile
            && p.transaction_id.is_none()
            && self.profile_fits(p)
    }

    /// A transaction ended: its TxProfiles go.
    pub(super) fn drop_tx_profiles(&mut self, connector: u32) {
        self.durable.remove_profiles(|i| {
            i.connector == connector
                && i.profile.charging_profile_purpose == ChargingProfilePurpose::TxProfile
        });
    }

    pub(super) fn set_charging_profile(&mut self, id: &str, r: SetChargingProfileRequest) {
        let status = if self.profile_accepted(&r) {
            let connector = r.connector_id as u32;
            if self.install_profile(connector, r.cs_charging_profiles) {
                ChargingProfileStatus::Accepted
            } else {
                ChargingProfileStatus::Rejected
            }
        } else {
            ChargingProfileStatus::Rejected
        };
        self.respond(id, SetChargingProfileResponse { status });
    }

    fn profile_accepted(&self, r: &SetChargingProfileRequest) -> bool {
        let count = self.connector_count() as i32;
        let p = &r.cs_charging_profiles;
        if !(0..=count).contains(&r.connector_id) || !self.profile_fits(p) {
            return false;
        }
        let connector = r.connector_id as u32;
        match p.charging_profile_purpose {
            ChargingProfilePurpose::ChargePointMaxProfile => connector == 0,
            ChargingProfilePurpose::TxDefaultProfile => true,
            // Only for the transaction running on that connector.
            ChargingProfilePurpose::TxProfile => {
                connector > 0
                    && self.has_transaction(connector)
                    && p.transaction_id
                        .is_none_or(|t| self.transaction_id(connector) == Some(t))
            }
            ChargingProfilePurpose::Unrecognized(_) => false,
        }
    }

    pub(super) fn clear_charging_profile(&mut self, id: &str, r: ClearChargingProfileRequest) {
        let removed = self.durable.remove_profiles(|i| {
            match r.id {
                // With an id, only that profile.
                Some(profile_id) => i.profile.charging_profile_id == profile_id,
                None => {
                    r.connector_id.is_none_or(|c| i.connector as i32 == c)
                        && r.charging_profile_purpose
                            .as_ref()
                            .is_none_or(|p| *p == i.profile.charging_profile_purpose)
                        && r.stack_level.is_none_or(|s| s == i.profile.stack_level)
                }
            }
        });
        let status = if removed > 0 {
            self.persist();
            ClearChargingProfileStatus::Accepted
        } else {
            ClearChargingProfileStatus::Unknown
        };
        self.respond(id, ClearChargingProfileResponse { status });
    }

    /// The limit of a connector (0: the whole pile) at `t` (A): what the pile would offer by
    /// its charging profiles and its rating.
    fn scheduled_amps(&self, connector: u32, t: i64) -> f64 {
        let rated = self.settings.options.rated_current_a;
        if connector == 0 {
            let all = rated * f64::from(self.connector_count());
            self.pile_limit(t).map_or(all, |l| l.min(all))
        } else {
            self.profile_limit(connector, t)
                .map_or(rated, |l| l.min(rated))
        }
    }

    pub(super) fn get_composite_schedule(
        &mut self,
        id: &str,
        r: GetCompositeScheduleRequest,
        now: Duration,
    ) {
        let count = self.connector_count() as i32;
        let unit = r.charging_rate_unit.clone().unwrap_or(ChargingRateUnit::A);
        if !(0..=count).contains(&r.connector_id)
            || r.duration < 0
            || matches!(unit, ChargingRateUnit::Unrecognized(_))
        {
            return self.respond(
                id,
                GetCompositeScheduleResponse {
                    status: GetCompositeScheduleStatus::Rejected,
                    connector_id: None,
                    schedule_start: None,
                    charging_schedule: None,
                },
            );
        }
        let connector = r.connector_id as u32;
        let start = self.wall_ms(now);
        let end = start + i64::from(r.duration) * 1000;
        let mut periods: Vec<ChargingSchedulePeriod> = Vec::new();
        let mut t = start;
        let starts = self.schedule_starts();
        loop {
            let amps = self.scheduled_amps(connector, t);
            let value = match unit {
                ChargingRateUnit::W => amps * sc::VOLTS,
                _ => amps,
            };
            let limit = ChargingRate::from_f64(value).unwrap_or(ChargingRate::ZERO);
            if periods.last().is_none_or(|p| p.limit != limit) {
                periods.push(ChargingSchedulePeriod {
                    start_period: ((t - start) / 1000) as i32,
                    limit,
                    number_phases: Some(1),
                });
            }
            let next = self
                .durable
                .profiles()
                .iter()
                .flat_map(|i| {
                    starts
                        .iter()
                        .filter_map(|s| sc::next_change(&i.profile, t, *s))
                })
                .min();
            match next {
                // Periods start on whole seconds.
                Some(n) if (n + 999) / 1000 * 1000 < end => t = (n + 999) / 1000 * 1000,
                _ => break,
            }
        }
        let at = Timestamp::from_millis(start).unwrap_or(self.time.clock.at(now));
        self.respond(
            id,
            GetCompositeScheduleResponse {
                status: GetCompositeScheduleStatus::Accepted,
                connector_id: Some(r.connector_id),
                schedule_start: Some(at),
                charging_schedule: Some(ChargingSchedule {
                    duration: Some(r.duration),
                    start_schedule: Some(at),
                    charging_rate_unit: unit,
                    charging_schedule_period: periods,
                    min_charging_rate: None,
                }),
            },
        );
    }
}
