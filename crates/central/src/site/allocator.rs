//! The allocator of one site: the piles' sessions, measurements, answers and the time go in;
//! the limits to set and the record of every decision come out.

use std::collections::BTreeMap;

pub use super::decision::{Decision, Reaction, Reason, SessionView, SetLimit, Trigger};
use super::policy::{divide, Claim, Site, RESOLUTION_A, VOLTS_PER_PHASE};
use super::Millis;

/// The longest a SetChargingProfile waits for its answer: the caller reports one unanswered
/// by then as rejected (the central system's command timeout, 30 s by default).
pub const ROUND_TRIP: Millis = 30_000;
/// How long before a schedule lowers the capacity the others are lowered: a profile's round
/// trip, after the one that may be on its way to the same pile.
pub const LEAD: Millis = 2 * ROUND_TRIP;
/// A limit changes by at least this much, or not at all (except to queue or admit a session).
pub const STEP_A: f64 = 1.0;
/// A session drawing this much less than its limit draws less than offered.
const LOW_MARGIN_A: f64 = 1.0;
/// A session settled below its share keeps this much above its draw.
const HEADROOM_A: f64 = 1.0;

/// The charging rate units a pile takes (ChargingScheduleAllowedChargingRateUnit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnits {
    Current,
    Power,
    Both,
    /// The key is empty: the pile takes no charging profile.
    Neither,
}

impl RateUnits {
    /// The key's value: a comma-separated list of `Current` and `Power`.
    pub fn parse(value: &str) -> RateUnits {
        let has = |w: &str| value.split(',').any(|v| v.trim().eq_ignore_ascii_case(w));
        match (has("Current"), has("Power")) {
            (true, true) => RateUnits::Both,
            (true, false) => RateUnits::Current,
            (false, true) => RateUnits::Power,
            (false, false) => RateUnits::Neither,
        }
    }
}

/// The unit a limit goes to the pile in (the chargingRateUnit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    A,
    W,
}

/// A pile's limits, as read from its configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PileLimits {
    pub connectors: u32,
    /// ChargeProfileMaxStackLevel: the TxProfiles go at this level.
    pub max_stack_level: u32,
    /// ChargingScheduleAllowedChargingRateUnit.
    pub rate_units: RateUnits,
    /// MaxChargingProfilesInstalled: the TxDefaultProfile and one TxProfile per connector
    /// must fit, or the pile's sessions are not managed.
    pub max_profiles: u32,
    /// The most a connector draws per phase (its rating).
    pub max_a: f64,
}

impl PileLimits {
    fn takes_profiles(&self) -> bool {
        self.rate_units != RateUnits::Neither && self.max_profiles > self.connectors
    }
}

/// A session as it starts: StartTransaction on a connector of a pile of the site.
#[derive(Debug, Clone, PartialEq)]
pub struct Arrival {
    pub pile: String,
    pub connector: u32,
    pub transaction: i64,
    /// The idTag's priority group: a higher one is served first.
    pub group: u32,
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllocError {
    #[error("pile {0} is not on this site")]
    UnknownPile(String),
    #[error("pile {pile} has no connector {connector}")]
    UnknownConnector { pile: String, connector: u32 },
    #[error("transaction {0} is already on this site")]
    DuplicateTransaction(i64),
}

#[derive(Debug, Clone)]
struct Pile {
    limits: PileLimits,
    online: bool,
}

#[derive(Debug, Clone)]
struct Session {
    pile: String,
    connector: u32,
    group: u32,
    arrival: Millis,
    /// The last limit the pile accepted.
    confirmed: Option<f64>,
    /// The limit sent, not yet answered.
    in_flight: Option<f64>,
    /// What it may draw beyond those, until a profile is confirmed: a limit whose answer was
    /// lost, or the fail-safe while its pile was offline.
    doubt: f64,
    /// Back online after a limit whose answer was lost: its limit is asked again, once.
    ask_again: bool,
    /// Its pile rejected a lowering: not managed until the pile comes back online.
    rejected: bool,
    /// Its pile rejected a raise: not raised above this until the pile comes back online
    /// (lowerings still go).
    ceiling: Option<f64>,
    /// When its limit last changed (a profile sent).
    changed_at: Option<Millis>,
    measured: Option<f64>,
    /// Since when it draws less than its limit.
    low_since: Option<Millis>,
    /// Settled below its share: the most it is given.
    draw_cap: Option<f64>,
    queued: bool,
    /// Its share in the last plan, and why.
    share: Option<(f64, Reason)>,
    /// The last reason recorded, to record only changes.
    last_reason: Option<Reason>,
}

/// The allocator of one site.
#[derive(Debug, Clone)]
pub struct Allocator {
    site: Site,
    piles: BTreeMap<String, Pile>,
    sessions: BTreeMap<i64, Session>,
    now: Millis,
}

impl Allocator {
    pub fn new(site: Site) -> Allocator {
        Allocator {
            site,
            piles: BTreeMap::new(),
            sessions: BTreeMap::new(),
            now: Millis::MIN,
        }
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The site's terms change: the sessions are divided again under them (lowerings first).
    pub fn change_site(&mut self, now: Millis, site: Site) -> Reaction {
        self.site = site;
        self.replan(now, Trigger::Terms)
    }

    /// A pile joins the site (again: its limits are replaced); it is online.
    pub fn join_pile(&mut self, now: Millis, pile: &str, limits: PileLimits) -> Reaction {
        self.piles.insert(
            pile.to_string(),
            Pile {
                limits,
                online: true,
            },
        );
        self.replan(now, Trigger::PileJoined)
    }

    /// A pile leaves the site, with its sessions.
    pub fn remove_pile(&mut self, now: Millis, pile: &str) -> Reaction {
        self.piles.remove(pile);
        self.sessions.retain(|_, s| s.pile != pile);
        self.replan(now, Trigger::PileLeft)
    }

    /// A session starts: it draws the fail-safe (the TxDefaultProfile) until its profile is
    /// confirmed. A session already on that connector has ended.
    pub fn arrive(&mut self, now: Millis, arrival: Arrival) -> Result<Reaction, AllocError> {
        self.admit(now, arrival)?;
        Ok(self.replan(now, Trigger::Arrival))
    }

    /// Sessions found starting together (in one look at the store, or all at once when a node
    /// takes a site over): divided in one plan, so that none is given a share that the next
    /// one's arrival lowers at once. The refused ones come back with the reason.
    pub fn arrive_all(
        &mut self,
        now: Millis,
        arrivals: Vec<Arrival>,
    ) -> (Reaction, Vec<(i64, AllocError)>) {
        let refused = arrivals
            .into_iter()
            .filter_map(|a| {
                let transaction = a.transaction;
                self.admit(now, a).err().map(|e| (transaction, e))
            })
            .collect();
        (self.replan(now, Trigger::Arrival), refused)
    }

    /// Takes a session in, unless its pile, connector or transaction does not fit.
    fn admit(&mut self, now: Millis, arrival: Arrival) -> Result<(), AllocError> {
        let pile = self
            .piles
            .get(&arrival.pile)
            .ok_or_else(|| AllocError::UnknownPile(arrival.pile.clone()))?;
        if arrival.connector == 0 || arrival.connector > pile.limits.connectors {
            return Err(AllocError::UnknownConnector {
                pile: arrival.pile,
                connector: arrival.connector,
            });
        }
        if self.sessions.contains_key(&arrival.transaction) {
            return Err(AllocError::DuplicateTransaction(arrival.transaction));
        }
        self.sessions
            .retain(|_, s| !(s.pile == arrival.pile && s.connector == arrival.connector));
        self.sessions.insert(
            arrival.transaction,
            Session {
                pile: arrival.pile,
                connector: arrival.connector,
                group: arrival.group,
                arrival: now.max(self.now),
                confirmed: None,
                in_flight: None,
                doubt: 0.0,
                rejected: false,
                ask_again: false,
                ceiling: None,
                changed_at: None,
                measured: None,
                low_since: None,
                draw_cap: None,
                queued: false,
                share: None,
                last_reason: None,
            },
        );
        Ok(())
    }

    /// A session ended (StopTransaction, or the EV finished). Unknown: nothing.
    pub fn depart(&mut self, now: Millis, transaction: i64) -> Reaction {
        if self.sessions.remove(&transaction).is_none() {
            return Reaction::default();
        }
        self.replan(now, Trigger::Departure)
    }

    /// The session's Current.Import, per phase: its draw is the highest.
    pub fn measure(&mut self, now: Millis, transaction: i64, phases: &[f64]) -> Reaction {
        let Some(session) = self.sessions.get_mut(&transaction) else {
            return Reaction::default();
        };
        let draw = phases
            .iter()
            .copied()
            .filter(|a| a.is_finite())
            .fold(0.0, f64::max);
        session.measured = Some(draw);
        let limit = session.confirmed.unwrap_or(self.site.failsafe_a());
        if let Some(cap) = session.draw_cap {
            if draw >= cap.min(limit) - 0.5 {
                session.draw_cap = None;
                session.low_since = None;
            }
        }
        if draw < limit - LOW_MARGIN_A && session.in_flight.is_none() {
            session.low_since.get_or_insert(now);
        } else {
            session.low_since = None;
        }
        self.replan(now, Trigger::Measurement)
    }

    /// The pile accepted the session's profile: its limit is in force.
    pub fn profile_accepted(&mut self, now: Millis, transaction: i64) -> Reaction {
        if let Some(session) = self.sessions.get_mut(&transaction) {
            if let Some(limit) = session.in_flight.take() {
                session.confirmed = Some(limit);
                session.doubt = 0.0;
            }
        }
        self.replan(now, Trigger::Accepted)
    }

    /// The pile rejected the session's profile (or did not answer in time): it keeps the limit
    /// it had. Until its pile comes back online, a session whose raise was rejected is not
    /// raised again (it may still be lowered); one whose lowering was rejected is sent nothing
    /// more, and the others share what is left.
    pub fn profile_rejected(&mut self, now: Millis, transaction: i64) -> Reaction {
        let failsafe = self.site.failsafe_a();
        if let Some(session) = self.sessions.get_mut(&transaction) {
            if let Some(asked) = session.in_flight.take() {
                let kept = session.confirmed.unwrap_or(failsafe);
                if asked > kept {
                    session.ceiling = Some(kept);
                } else {
                    session.rejected = true;
                }
            }
        }
        self.replan(now, Trigger::Rejected)
    }

    /// The pile lost its connection: its sessions are accounted at their last confirmed limit
    /// or the fail-safe, the higher (a limit on its way may have been applied, and counts).
    pub fn pile_offline(&mut self, now: Millis, pile: &str) -> Reaction {
        let Some(p) = self.piles.get_mut(pile) else {
            return Reaction::default();
        };
        p.online = false;
        let failsafe = self.site.failsafe_a();
        for s in self.sessions.values_mut().filter(|s| s.pile == pile) {
            s.doubt = s.doubt.max(failsafe).max(s.in_flight.take().unwrap_or(0.0));
        }
        self.replan(now, Trigger::Offline)
    }

    /// The pile is back: its sessions are managed again (their doubt stays until a profile is
    /// confirmed).
    pub fn pile_online(&mut self, now: Millis, pile: &str) -> Reaction {
        let Some(p) = self.piles.get_mut(pile) else {
            return Reaction::default();
        };
        p.online = true;
        for s in self.sessions.values_mut().filter(|s| s.pile == pile) {
            s.rejected = false;
            s.ask_again = s.doubt > 0.0;
            s.ceiling = None;
            s.changed_at = None;
        }
        self.replan(now, Trigger::Online)
    }

    /// The time passes: schedule boundaries, settling times.
    pub fn tick(&mut self, now: Millis) -> Reaction {
        self.replan(now, Trigger::Time)
    }

    /// When the allocator next has something to do without an event: a schedule boundary (or
    /// [`LEAD`] before it), a settling time's end.
    pub fn next_tick(&self) -> Option<Millis> {
        let now = self.now;
        let settle = self.site.settle();
        let boundary = self.site.next_change(now);
        let lead = self.site.next_change(now + LEAD).map(|t| t - LEAD);
        let sessions = self.sessions.values().flat_map(|s| {
            [
                s.low_since.map(|t| t + settle),
                s.changed_at.map(|t| t + settle),
            ]
        });
        [boundary, lead]
            .into_iter()
            .chain(sessions)
            .flatten()
            .filter(|&t| t > now)
            .min()
    }

    /// What the site's sessions and idle connectors may draw now, as accounted: a raise from
    /// the moment it is sent, a lowering once it is confirmed, the fail-safe for an idle
    /// connector or a session no profile reached.
    pub fn accounted_a(&self) -> f64 {
        self.total(Self::accounted)
    }

    /// What may be drawn should any pile lose its connection now: as accounted, each session
    /// at least at the fail-safe. Raises are sent only while it stays within the capacity.
    fn exposure_a(&self) -> f64 {
        self.total(Self::exposure)
    }

    fn total(&self, each: fn(&Allocator, i64) -> f64) -> f64 {
        let failsafe = self.site.failsafe_a();
        let idle: f64 = self
            .piles
            .iter()
            .map(|(id, p)| {
                let busy = self.sessions.values().filter(|s| &s.pile == id).count() as u32;
                f64::from(p.limits.connectors.saturating_sub(busy)) * failsafe
            })
            .sum();
        idle + self.sessions.keys().map(|&t| each(self, t)).sum::<f64>()
    }

    /// The sessions, for the site's page.
    pub fn sessions(&self) -> Vec<SessionView> {
        self.sessions
            .iter()
            .map(|(&transaction, s)| SessionView {
                pile: s.pile.clone(),
                connector: s.connector,
                transaction,
                granted_a: self.accounted(transaction),
                share_a: s.share.map(|(a, _)| a),
                reason: s.share.map(|(_, r)| r).or_else(|| self.held(s)),
                measured_a: s.measured,
                queued: s.queued,
            })
            .collect()
    }

    fn accounted(&self, transaction: i64) -> f64 {
        let s = &self.sessions[&transaction];
        let pile = &self.piles[&s.pile];
        if !pile.limits.takes_profiles() {
            return pile.limits.max_a;
        }
        s.confirmed
            .unwrap_or(self.site.failsafe_a())
            .max(s.in_flight.unwrap_or(0.0))
            .max(s.doubt)
    }

    fn exposure(&self, transaction: i64) -> f64 {
        self.accounted(transaction).max(self.site.failsafe_a())
    }

    /// The limit last asked of the session's pile (or the fail-safe, none asked yet).
    fn target(&self, s: &Session) -> f64 {
        s.in_flight
            .or(s.confirmed)
            .unwrap_or(self.site.failsafe_a())
    }

    /// Why a session is not managed now, if it is not.
    fn held(&self, s: &Session) -> Option<Reason> {
        let pile = &self.piles[&s.pile];
        if !pile.limits.takes_profiles() {
            Some(Reason::Unmanaged)
        } else if !pile.online {
            Some(Reason::Offline)
        } else if s.rejected || s.ceiling.is_some_and(|c| c < self.site.floor_a()) {
            Some(Reason::Rejected)
        } else {
            None
        }
    }

    fn replan(&mut self, now: Millis, trigger: Trigger) -> Reaction {
        let now = now.max(self.now);
        self.now = now;
        let settle = self.site.settle();
        let floor = self.site.floor_a();
        for s in self.sessions.values_mut() {
            if let (Some(since), None) = (s.low_since, s.draw_cap) {
                if now >= since + settle {
                    let draw = s.measured.unwrap_or(0.0);
                    s.draw_cap = Some((draw + HEADROOM_A).max(floor));
                    s.low_since = None;
                }
            }
        }
        let mut reaction = Reaction::default();
        let plan_capacity = self.site.lowest_between(now, now + LEAD);
        let failsafe = self.site.failsafe_a();
        let managed: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| self.held(s).is_none())
            .map(|(&t, _)| t)
            .collect();
        let managed_exposure: f64 = managed.iter().map(|&t| self.exposure(t)).sum();
        let budget = plan_capacity - (self.exposure_a() - managed_exposure);
        // Held sessions: recorded once when they become held.
        let held: Vec<(i64, Reason)> = self
            .sessions
            .iter()
            .filter_map(|(&t, s)| self.held(s).map(|r| (t, r)))
            .collect();
        for (t, reason) in held {
            self.record(&mut reaction, now, t, self.accounted(t), trigger, reason);
        }
        let claims: Vec<Claim> = managed
            .iter()
            .map(|&t| {
                let s = &self.sessions[&t];
                let max = self.piles[&s.pile].limits.max_a;
                Claim {
                    group: s.group,
                    arrival: s.arrival,
                    transaction: t,
                    cap: s
                        .draw_cap
                        .map_or(max, |c| c.min(max))
                        .min(s.ceiling.unwrap_or(f64::INFINITY))
                        .max(floor),
                }
            })
            .collect();
        let grants = divide(budget, floor, failsafe, &claims);
        let plan: Vec<(i64, f64, Reason)> = self.reasons(&claims, &grants);
        for s in self.sessions.values_mut() {
            s.share = None;
            s.queued = false;
        }
        for &(t, amps, reason) in &plan {
            if let Some(s) = self.sessions.get_mut(&t) {
                s.queued = amps == 0.0;
                s.share = Some((amps, reason));
            }
        }

        // Which changes go: lowerings of at least a step (or to queue, or a first profile),
        // raises of at least a step outside the settling time. A lowering of less than a step
        // goes only when the others' limits would not fit without it.
        let mut lowerings = Vec::new();
        let mut raises = Vec::new();
        let mut small_lowerings = Vec::new();
        // What each managed session may draw once this reaction's limits are in force.
        let mut after = 0.0;
        for &(t, amps, reason) in &plan {
            let s = &self.sessions[&t];
            let current = self.target(s);
            if s.in_flight.is_some() {
                after += current.max(failsafe);
                continue;
            }
            let delta = amps - current;
            let first = s.confirmed.is_none() && s.changed_at.is_none();
            let settled = s.changed_at.is_none_or(|at| now >= at + settle);
            let mut kept = current;
            if s.ask_again || s.doubt > current + 1e-9 {
                // Back online after a limit whose answer was lost: asked again, so that what
                // it holds is known.
                if amps <= self.exposure(t) {
                    lowerings.push((t, amps, reason));
                } else {
                    raises.push((t, amps, reason));
                }
                kept = amps;
            } else if delta <= -STEP_A || (amps == 0.0 && current > 0.0) || (first && delta < 0.0) {
                lowerings.push((t, amps, reason));
                kept = amps;
            } else if delta < -1e-6 {
                small_lowerings.push((t, amps, reason));
            } else if (delta >= STEP_A || (first && delta > 1e-6) || (current == 0.0 && amps > 0.0))
                && settled
            {
                raises.push((t, amps, reason));
                kept = amps;
            } else {
                self.record(&mut reaction, now, t, current, trigger, reason);
            }
            after += kept.max(failsafe);
        }
        let held_exposure = self.exposure_a() - managed_exposure;
        if held_exposure + after > plan_capacity + 1e-9 {
            lowerings.append(&mut small_lowerings);
        } else {
            for (t, _, reason) in small_lowerings {
                let kept = self.target(&self.sessions[&t]);
                self.record(&mut reaction, now, t, kept, trigger, reason);
            }
        }
        for (t, amps, reason) in lowerings {
            self.send(&mut reaction, now, t, amps, trigger, reason);
        }
        for (t, amps, reason) in raises {
            let rise = amps.max(failsafe) - self.exposure(t);
            if self.exposure_a() + rise.max(0.0) <= plan_capacity + 1e-9 {
                self.send(&mut reaction, now, t, amps, trigger, reason);
            }
        }
        reaction
    }

    /// Each planned grant with the reason for it (a queued session: 0 A).
    fn reasons(&self, claims: &[Claim], grants: &[Option<f64>]) -> Vec<(i64, f64, Reason)> {
        let max_of = |c: &Claim| self.piles[&self.sessions[&c.transaction].pile].limits.max_a;
        let mut queued: Vec<&Claim> = claims
            .iter()
            .zip(grants)
            .filter(|(_, g)| g.is_none())
            .map(|(c, _)| c)
            .collect();
        queued.sort_by_key(|c| (std::cmp::Reverse(c.group), c.arrival, c.transaction));
        claims
            .iter()
            .zip(grants)
            .map(|(c, g)| match g {
                None => {
                    let ahead = queued
                        .iter()
                        .position(|q| q.transaction == c.transaction)
                        .unwrap_or(0);
                    (c.transaction, 0.0, Reason::Queued { ahead })
                }
                Some(a) => {
                    let s = &self.sessions[&c.transaction];
                    let reason = if *a >= c.cap - RESOLUTION_A - 1e-9
                        && s.ceiling.is_some_and(|d| d <= c.cap + 1e-9)
                    {
                        Reason::Rejected
                    } else if *a >= c.cap - RESOLUTION_A - 1e-9
                        && s.draw_cap.is_some_and(|d| d < max_of(c))
                    {
                        Reason::DrawsLess { cap: c.cap }
                    } else if *a >= max_of(c) - RESOLUTION_A - 1e-9 {
                        Reason::PileMaximum
                    } else {
                        let among = claims
                            .iter()
                            .zip(grants)
                            .filter(|(o, og)| o.group == c.group && og.is_some())
                            .count();
                        Reason::Share {
                            group: c.group,
                            among,
                        }
                    };
                    (c.transaction, *a, reason)
                }
            })
            .collect()
    }

    fn send(
        &mut self,
        reaction: &mut Reaction,
        now: Millis,
        transaction: i64,
        amps: f64,
        trigger: Trigger,
        reason: Reason,
    ) {
        let phases = self.site.phases();
        let s = self
            .sessions
            .get_mut(&transaction)
            .expect("a planned session");
        s.in_flight = Some(amps);
        s.ask_again = false;
        s.changed_at = Some(now);
        s.low_since = None;
        let limits = self.piles[&s.pile].limits;
        let (unit, limit) = match limits.rate_units {
            RateUnits::Power => (Unit::W, amps * VOLTS_PER_PHASE * f64::from(phases)),
            _ => (Unit::A, amps),
        };
        reaction.commands.push(SetLimit {
            pile: s.pile.clone(),
            connector: s.connector,
            transaction,
            stack_level: limits.max_stack_level,
            amps,
            unit,
            limit,
            phases,
        });
        s.last_reason = Some(reason);
        reaction.decisions.push(Decision {
            time: now,
            transaction,
            granted_a: amps,
            trigger,
            reason,
        });
    }

    /// Records a decision that sends nothing, when the session's reason changed.
    fn record(
        &mut self,
        reaction: &mut Reaction,
        now: Millis,
        transaction: i64,
        granted_a: f64,
        trigger: Trigger,
        reason: Reason,
    ) {
        let s = self.sessions.get_mut(&transaction).expect("a session");
        if s.last_reason == Some(reason) {
            return;
        }
        s.last_reason = Some(reason);
        reaction.decisions.push(Decision {
            time: now,
            transaction,
            granted_a,
            trigger,
            reason,
        });
    }
}
