//! Property tests: random sites, piles and sequences of events on a virtual clock, the piles
//! answering after a delay (and refusing some raises), checked at every instant.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

const DAY: Millis = 86_400_000;
const MIN: Millis = 60_000;
/// A midnight UTC.
const BASE: Millis = 20_000 * DAY;

#[derive(Debug, Clone)]
enum Step {
    Arrive {
        pile: usize,
        connector: u32,
        group: u32,
    },
    Depart {
        pick: usize,
    },
    /// The EV draws up to this much (no more than its limit).
    Measure {
        pick: usize,
        amps: f64,
    },
    Offline {
        pile: usize,
    },
    Online {
        pile: usize,
    },
    Wait {
        ms: Millis,
    },
}

#[derive(Debug, Clone)]
struct Case {
    capacity: f64,
    min: f64,
    /// Of the most the connectors may share.
    failsafe_share: f64,
    settle: Millis,
    /// (start minute, length in minutes, limit as a share of the capacity).
    period: Option<(u32, u32, f64)>,
    /// (connectors, max A, takes only Power).
    piles: Vec<(u32, f64, bool)>,
    steps: Vec<(Step, Millis)>,
    /// (delay of the answer, whether a raise is refused), used in turn.
    answers: Vec<(Millis, bool)>,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0usize..6, 1u32..=2, 0u32..3)
            .prop_map(|(pile, connector, group)| Step::Arrive { pile, connector, group }),
        2 => (0usize..8).prop_map(|pick| Step::Depart { pick }),
        4 => (0usize..8, 0.0f64..40.0).prop_map(|(pick, amps)| Step::Measure { pick, amps }),
        1 => (0usize..6).prop_map(|pile| Step::Offline { pile }),
        1 => (0usize..6).prop_map(|pile| Step::Online { pile }),
        2 => (0 as Millis..20 * MIN).prop_map(|ms| Step::Wait { ms }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        (
            10.0f64..100.0,
            6.0f64..10.0,
            prop_oneof![Just(0.0), 0.0f64..1.0],
        ),
        prop_oneof![Just(0), Just(30_000 as Millis), Just(60_000), Just(120_000)],
        proptest::option::of((0u32..1440, 10u32..600, 0.0f64..1.0)),
        proptest::collection::vec(
            (1u32..=2, prop_oneof![Just(16.0), Just(32.0)], any::<bool>()),
            1..6,
        ),
        proptest::collection::vec((step(), 0 as Millis..90_000), 1..60),
        proptest::collection::vec(
            (0 as Millis..ROUND_TRIP, proptest::bool::weighted(0.2)),
            1..16,
        ),
    )
        .prop_map(
            |((capacity, min, failsafe_share), settle, period, piles, steps, answers)| Case {
                capacity,
                min: min.min(capacity),
                failsafe_share,
                settle,
                period,
                piles,
                steps,
                answers,
            },
        )
}

struct Answer {
    due: Millis,
    transaction: i64,
    pile: String,
    accept: bool,
}

/// The allocator with piles that answer, and the checks made at every instant.
struct Harness {
    alloc: Allocator,
    now: Millis,
    answers: Vec<Answer>,
    terms: Vec<(Millis, bool)>,
    next_term: usize,
    /// What the harness last sent each transaction, and when.
    sent: BTreeMap<i64, (f64, Millis)>,
    /// What each pile confirmed.
    confirmed: BTreeMap<i64, f64>,
    commands: usize,
    connectors: usize,
    /// When each pile last came back online.
    online_at: BTreeMap<String, Millis>,
}

impl Harness {
    fn check_until(&self, to: Millis) {
        let lowest = self.alloc.site().lowest_between(self.now, to);
        let drawn = self.alloc.accounted_a();
        // What nobody can lower: the sessions of offline piles and of piles that refused a
        // lowering (a schedule that lowers the capacity below them is not met), and the
        // fail-safe of the idle connectors (within the lowest capacity, checked up front).
        let views = self.alloc.sessions();
        // A pile back online less than LEAD ago may not be lowered in time either.
        let recent = |v: &SessionView| {
            self.online_at
                .get(&v.pile)
                .is_some_and(|&at| to < at + LEAD)
        };
        let held: Vec<&SessionView> = views
            .iter()
            .filter(|v| v.share_a.is_none() || recent(v))
            .collect();
        let stuck: f64 = held.iter().map(|v| v.granted_a).sum::<f64>()
            + self.alloc.site().failsafe_a() * (self.connectors - held.len()) as f64;
        assert!(
            drawn <= lowest.max(stuck) + 1e-6,
            "{drawn} A accounted from {} to {to}, above the capacity {lowest} A",
            self.now
        );
    }

    fn apply(&mut self, r: Reaction) {
        let site = self.alloc.site().clone();
        let mut raised = false;
        let all = format!("{:?} {:?}", r.commands, self.sent);
        for c in r.commands {
            self.commands += 1;
            let before = self.sent.get(&c.transaction).copied();
            let from = before.map_or(site.failsafe_a(), |(a, _)| a);
            // After a reconnection what the pile holds is unknown: its first limit is neither.
            let unknown =
                before.is_some_and(|(_, at)| self.online_at.get(&c.pile).is_some_and(|&o| o >= at));
            let lowering = c.amps < from;
            assert!(
                unknown || !(raised && lowering),
                "a lowering after a raise: {c:?} in {all}"
            );
            raised |= c.amps > from && !unknown;
            if let Some((prev, at)) = before {
                let delta = c.amps - prev;
                let reconnected = self.online_at.get(&c.pile).is_some_and(|&o| o >= at);
                assert!(
                    delta.abs() > 1e-9 || reconnected,
                    "a limit set again to its value: {c:?}"
                );
                if delta > 0.0 {
                    assert!(
                        self.now >= at + site.settle(),
                        "a raise within the settling time: {c:?} at {}, last {at}",
                        self.now
                    );
                    assert!(
                        delta >= STEP_A - 1e-9
                            || prev == 0.0
                            || reconnected
                            || !self.confirmed.contains_key(&c.transaction),
                        "a raise of less than a step: {c:?} from {prev}"
                    );
                }
            }
            if c.unit == Unit::W {
                assert!((c.limit - c.amps * 230.0 * f64::from(c.phases)).abs() < 1e-6);
            }
            self.sent.insert(c.transaction, (c.amps, self.now));
            let (delay, refuse) = self.terms[self.next_term % self.terms.len()];
            self.next_term += 1;
            let was = self
                .confirmed
                .get(&c.transaction)
                .copied()
                .unwrap_or(site.failsafe_a());
            // A pile may refuse a raise; a refused lowering would leave it above its share.
            let accept = !(refuse && c.amps > was);
            self.answers.push(Answer {
                due: self.now + delay,
                transaction: c.transaction,
                pile: c.pile,
                accept,
            });
        }
        for d in &r.decisions {
            assert!(d.granted_a >= 0.0 && d.time == self.now, "{d:?}");
        }
        self.check_shares();
    }

    /// Every admitted session has at least the minimum; within a group, the sessions held to
    /// an equal share have the same (to 0.1 A), and the capped ones no more.
    fn check_shares(&self) {
        let min = self.alloc.site().min_a();
        let views = self.alloc.sessions();
        for v in &views {
            if let (Some(share), false) = (v.share_a, v.queued) {
                assert!(share >= min - 1e-9, "{v:?} below the minimum {min}");
            }
        }
        for v in &views {
            let Some(Reason::Share { group, .. }) = v.reason else {
                continue;
            };
            for w in &views {
                let same_group = matches!(w.reason,
                    Some(Reason::Share { group: g, .. }) if g == group);
                if same_group {
                    let (a, b) = (v.share_a.unwrap(), w.share_a.unwrap());
                    assert!((a - b).abs() <= 0.1 + 1e-9, "unequal shares: {v:?} {w:?}");
                }
            }
        }
    }

    /// A limit refused or whose answer was lost: the pile keeps the one it confirmed.
    fn forget(&mut self, transaction: i64) {
        let failsafe = self.alloc.site().failsafe_a();
        if let Some(sent) = self.sent.get_mut(&transaction) {
            sent.0 = self
                .confirmed
                .get(&transaction)
                .copied()
                .unwrap_or(failsafe);
        }
    }

    /// Moves the clock to `to`, delivering the answers and the ticks due on the way.
    fn advance(&mut self, to: Millis) {
        for round in 0.. {
            assert!(
                round < 10_000,
                "a storm: {} commands by {}",
                self.commands,
                self.now
            );
            let answer = self.answers.iter().map(|a| a.due).min();
            let tick = self.alloc.next_tick();
            let next = [answer, tick].into_iter().flatten().min();
            let Some(next) = next.filter(|&n| n <= to) else {
                break;
            };
            self.check_until(next);
            self.now = next.max(self.now);
            if let Some(i) = self.answers.iter().position(|a| a.due <= self.now) {
                let a = self.answers.remove(i);
                let r = if a.accept {
                    self.confirmed
                        .insert(a.transaction, self.sent[&a.transaction].0);
                    self.alloc.profile_accepted(self.now, a.transaction)
                } else {
                    self.forget(a.transaction);
                    self.alloc.profile_rejected(self.now, a.transaction)
                };
                self.apply(r);
            } else {
                let r = self.alloc.tick(self.now);
                self.apply(r);
            }
        }
        self.check_until(to);
        self.now = to.max(self.now);
    }
}

fn run(case: Case) -> Result<(), TestCaseError> {
    let connectors: u32 = case.piles.iter().map(|p| p.0).sum();
    let mut site = Site::new(case.capacity, 1)
        .unwrap()
        .with_min(case.min)
        .unwrap();
    let mut start = BASE + 8 * 60 * MIN;
    if let Some((begin, length, share)) = case.period {
        let end = (begin + length).min(1440);
        let period = Period {
            start: begin,
            end,
            limit_a: (case.capacity * share * 10.0).floor() / 10.0,
        };
        let schedule = Schedule::new(Cycle::Daily, vec![period], false, case.capacity).unwrap();
        site = site.with_schedule(schedule);
        start = BASE + Millis::from(begin) * MIN - 20 * MIN;
    }
    let most = site.lowest_capacity() / f64::from(connectors);
    let failsafe = ((most * case.failsafe_share) * 10.0).floor() / 10.0;
    let site = site
        .with_failsafe(failsafe)
        .unwrap()
        .with_settle(case.settle)
        .unwrap();
    prop_assert!(site.check_connectors(connectors as usize).is_ok());
    let mut h = Harness {
        alloc: Allocator::new(site),
        now: start,
        answers: Vec::new(),
        terms: case.answers.clone(),
        next_term: 0,
        sent: BTreeMap::new(),
        confirmed: BTreeMap::new(),
        commands: 0,
        connectors: connectors as usize,
        online_at: BTreeMap::new(),
    };
    let names: Vec<String> = (0..case.piles.len()).map(|i| format!("p{i}")).collect();
    for (name, &(connectors, max_a, power)) in names.iter().zip(&case.piles) {
        let limits = PileLimits {
            connectors,
            max_stack_level: 2,
            rate_units: if power {
                RateUnits::Power
            } else {
                RateUnits::Both
            },
            max_profiles: connectors + 1,
            max_a,
        };
        let r = h.alloc.join_pile(h.now, name, limits);
        h.apply(r);
    }
    let mut next_transaction = 1;
    for (step, gap) in case.steps {
        h.advance(h.now + gap);
        let open: Vec<SessionView> = h.alloc.sessions();
        let pick = |i: usize| (!open.is_empty()).then(|| open[i % open.len()].clone());
        let r = match step {
            Step::Arrive {
                pile,
                connector,
                group,
            } => {
                let pile = pile % names.len();
                let connector = 1 + (connector - 1) % case.piles[pile].0;
                next_transaction += 1;
                let arrival = Arrival {
                    pile: names[pile].clone(),
                    connector,
                    transaction: next_transaction,
                    group,
                };
                h.alloc.arrive(h.now, arrival).unwrap()
            }
            Step::Depart { pick: i } => match pick(i) {
                Some(v) => h.alloc.depart(h.now, v.transaction),
                None => Reaction::default(),
            },
            Step::Measure { pick: i, amps } => match pick(i) {
                Some(v) => {
                    let limit = h.confirmed.get(&v.transaction).copied().unwrap_or(failsafe);
                    h.alloc.measure(h.now, v.transaction, &[amps.min(limit)])
                }
                None => Reaction::default(),
            },
            Step::Offline { pile } => {
                let name = &names[pile % names.len()];
                let lost: Vec<i64> = h
                    .answers
                    .iter()
                    .filter(|a| &a.pile == name)
                    .map(|a| a.transaction)
                    .collect();
                h.answers.retain(|a| &a.pile != name);
                for t in lost {
                    h.forget(t);
                }
                h.alloc.pile_offline(h.now, name)
            }
            Step::Online { pile } => {
                // Back online, its limits are asked again at once (what it holds is unknown).
                let name = &names[pile % names.len()];
                for v in open.iter().filter(|v| &v.pile == name) {
                    if let Some(sent) = h.sent.get_mut(&v.transaction) {
                        sent.1 = Millis::MIN / 2;
                    }
                }
                h.online_at.insert(name.clone(), h.now);
                h.alloc.pile_online(h.now, name)
            }
            Step::Wait { ms } => {
                h.advance(h.now + ms);
                Reaction::default()
            }
        };
        h.apply(r);
    }

    // Quiet: past the schedule's boundaries within the next hour, every answer in, every
    // settling time past, then nothing is sent until the next boundary.
    for _ in 0..10 {
        h.advance(h.now + 3 * 60 * MIN);
        match h.alloc.site().next_change(h.now) {
            Some(b) if b - LEAD <= h.now + 60 * MIN => h.advance(b),
            _ => break,
        }
    }
    // The last events may still bring answers and, a settling time after them, raises: a pile
    // that refuses a raise leaves its share to the others, whose limits changed at the same
    // instant. Each round holds one more session at what it has, so it converges within one
    // round per session.
    let settle = h.alloc.site().settle();
    let rounds = h.alloc.sessions().len() + 1;
    let mut quiet = false;
    for _ in 0..=rounds {
        let before = h.commands;
        h.advance(h.now + settle + ROUND_TRIP);
        if h.commands == before && h.answers.is_empty() {
            quiet = true;
            break;
        }
    }
    prop_assert!(
        quiet,
        "still sending after {} rounds of the settling time",
        rounds
    );
    // Then nothing is sent until the schedule next changes the capacity (an hour at most).
    let until = match h.alloc.site().next_change(h.now) {
        Some(b) => (b - LEAD - 1).min(h.now + 60 * MIN),
        None => h.now + 60 * MIN,
    };
    let before = h.commands;
    h.advance(until.max(h.now));
    prop_assert_eq!(h.commands, before, "commands sent with nothing changing");
    let min = h.alloc.site().min_a();
    for v in h.alloc.sessions() {
        // A pile that refused a raise keeps what it had (its fail-safe, maybe below the
        // minimum): that is the pile's doing, and accounted so.
        let Some(share) = v.share_a else { continue };
        if !v.queued && v.reason != Some(Reason::Rejected) {
            prop_assert!(
                v.granted_a >= min - 1e-9,
                "{:?} below the minimum in {:?}",
                v,
                h.alloc
            );
            prop_assert!(
                (v.granted_a - share).abs() < STEP_A + 1e-9,
                "{:?} not at its share",
                v
            );
        }
    }
    Ok(())
}

/// 300 cases, or as many as `PROPTEST_CASES` says.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn what_may_be_drawn_never_exceeds_the_capacity_and_the_shares_are_fair(case in case()) {
        run(case)?;
    }
}
