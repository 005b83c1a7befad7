//! What happens to the fleet's piles: EVs arrive and leave, cards are shown, faults come and
//! go. One task for the whole fleet, its timers in one [`Schedule`].
//!
//! - `idle`: nothing; the piles boot, heartbeat and report their statuses.
//! - `daily`: a few sessions a day per connector (one every 8 h on average), EVs taking 5 to
//!   40 kWh at 10, 16 or 32 A and staying up to two hours after they are full; a fault on a
//!   pile about once every two days, cleared after one to five minutes.
//! - `busy`: a connector charges most of the time: sessions of 30 to 90 minutes, a few
//!   minutes apart, the EV never full; the first ones start within 30 s.
//!
//! When the fleet has idTags, a share of its piles (`card_share`, two in three by default)
//! are card piles: plug-and-charge off (VendorDirectWorkMode false), an EV plugs in and then
//! a card starts the session. The others charge by plug-and-charge (the idTag is the pile's
//! serial number, which the central must accept). The scenario can change while the fleet
//! runs (the control API's `POST /fleet/scenario`): the new one is planned from then on.

use std::time::Duration;

use tokio::time::Instant;

use super::schedule::Schedule;
use super::Fleet;
use crate::Ev;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Idle,
    Daily,
    Busy,
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "idle" => Ok(Scenario::Idle),
            "daily" => Ok(Scenario::Daily),
            "busy" => Ok(Scenario::Busy),
            _ => Err(format!("{s:?}: the scenarios are idle, daily and busy")),
        }
    }
}

/// Something due for one pile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Arrive { pile: usize, connector: u32 },
    Leave { pile: usize, connector: u32 },
    Fault { pile: usize },
    Clear { pile: usize },
}

/// A small deterministic source of dice (xorshift), seeded by the fleet.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn roll(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// 0 ≤ n < `below`.
    pub fn below(&mut self, below: u64) -> u64 {
        self.roll() % below.max(1)
    }

    /// Uniform in 0..1.
    pub fn unit(&mut self) -> f64 {
        (self.roll() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with this mean (the gaps between random arrivals).
    pub fn exp(&mut self, mean: Duration) -> Duration {
        mean.mul_f64(-(1.0 - self.unit()).ln())
    }

    /// Uniform between the two.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        low + (high - low).mul_f64(self.unit())
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);

/// Whether pile `n` of a fleet whose share `share` of piles take cards is one of them (spread
/// evenly over the fleet).
pub fn is_card_pile(n: usize, share: f64) -> bool {
    ((n + 1) as f64 * share).floor() > (n as f64 * share).floor()
}

/// The scenario's state: its dice and what is due.
pub struct Plan {
    scenario: Scenario,
    dice: Dice,
    due: Schedule<Due>,
    card_share: f64,
}

/// What the plan has a pile do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Act {
    Arrive {
        pile: usize,
        connector: u32,
        card: Option<usize>,
        ev: Ev,
    },
    Leave {
        pile: usize,
        connector: u32,
    },
    Fault {
        pile: usize,
    },
    Clear {
        pile: usize,
    },
}

impl Plan {
    /// The plan for `piles` piles of `connectors` connectors, from time zero.
    pub fn new(scenario: Scenario, seed: u64, piles: usize, connectors: u32) -> Plan {
        let mut plan = Plan {
            scenario,
            dice: Dice::new(seed),
            due: Schedule::default(),
            card_share: 2.0 / 3.0,
        };
        for pile in 0..piles {
            for connector in 1..=connectors {
                let first = match scenario {
                    Scenario::Idle => continue,
                    Scenario::Daily => plan.dice.exp(8 * HOUR),
                    // Spread over the first minutes, so that the fleet does not start at once.
                    Scenario::Busy => plan.dice.between(Duration::from_secs(1), 30 * SECOND),
                };
                plan.due.at(first, Due::Arrive { pile, connector });
            }
            if scenario == Scenario::Daily {
                let first = plan.dice.exp(48 * HOUR);
                plan.due.at(first, Due::Fault { pile });
            }
        }
        plan
    }

    /// The share of piles that take cards (when the fleet has idTags).
    pub fn with_card_share(mut self, share: f64) -> Plan {
        self.card_share = share;
        self
    }

    pub fn next_due(&self) -> Option<Duration> {
        self.due.next_due()
    }

    /// What is due at `now`, and the next steps planned from it. `cards`: how many idTags
    /// the fleet has.
    pub fn due(&mut self, now: Duration, cards: usize) -> Vec<Act> {
        let mut acts = Vec::new();
        while let Some((_, due)) = self.due.pop_due(now) {
            acts.push(self.act(due, now, cards));
        }
        acts
    }

    fn act(&mut self, due: Due, now: Duration, cards: usize) -> Act {
        let d = &mut self.dice;
        match due {
            Due::Arrive { pile, connector } => {
                let amps = [10.0, 16.0, 32.0][d.below(3) as usize];
                let (energy_wh, stay) = match self.scenario {
                    Scenario::Busy => (None, d.between(30 * MINUTE, 90 * MINUTE)),
                    _ => {
                        let wh = 5000.0 + 35_000.0 * d.unit();
                        let charging = HOUR.mul_f64(wh / (amps * 230.0));
                        (Some(wh), charging + d.between(Duration::ZERO, 2 * HOUR))
                    }
                };
                let card = (cards > 0 && is_card_pile(pile, self.card_share))
                    .then(|| d.below(cards as u64) as usize);
                self.due.at(now + stay, Due::Leave { pile, connector });
                Act::Arrive {
                    pile,
                    connector,
                    card,
                    ev: Ev {
                        max_current: amps,
                        energy_wh,
                        ..Ev::default()
                    },
                }
            }
            Due::Leave { pile, connector } => {
                let gap = match self.scenario {
                    Scenario::Busy => d.between(MINUTE, 5 * MINUTE),
                    _ => d.exp(8 * HOUR),
                };
                self.due.at(now + gap, Due::Arrive { pile, connector });
                Act::Leave { pile, connector }
            }
            Due::Fault { pile } => {
                let lasts = d.between(MINUTE, 5 * MINUTE);
                self.due.at(now + lasts, Due::Clear { pile });
                Act::Fault { pile }
            }
            Due::Clear { pile } => {
                let next = d.exp(48 * HOUR);
                self.due.at(now + next, Due::Fault { pile });
                Act::Clear { pile }
            }
        }
    }
}

/// Runs the fleet's scenario until the fleet stops; a new scenario is planned from the moment
/// it is set.
pub(super) async fn run(fleet: std::sync::Arc<Fleet>) {
    let spec = &fleet.spec;
    let mut stopping = fleet.stopping();
    let mut scenario = fleet.scenario_changes();
    let mut seed = spec.seed;
    loop {
        let current = *scenario.borrow_and_update();
        let mut plan =
            Plan::new(current, seed, spec.count, spec.connectors).with_card_share(spec.card_share);
        seed = seed.wrapping_add(1);
        let start = Instant::now();
        loop {
            let next = plan.next_due();
            tokio::select! {
                _ = sleep_until(next.map(|n| start + n)) => {}
                changed = scenario.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                _ = stopping.wait_for(|s| *s) => return,
            }
            for act in plan.due(start.elapsed(), spec.id_tags.len()) {
                apply(&fleet, act);
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn apply(fleet: &Fleet, act: Act) {
    let piles = fleet.piles();
    // Errors are a connector that does not exist or a card too long: the spec's own.
    match act {
        Act::Arrive {
            pile,
            connector,
            card,
            ev,
        } => {
            let sim = &piles[pile].sim;
            let _ = sim.plug_ev(connector, ev);
            if let Some(card) = card {
                let _ = sim.card(Some(connector), &fleet.spec.id_tags[card]);
            }
        }
        Act::Leave { pile, connector } => {
            let _ = piles[pile].sim.unplug(connector);
        }
        Act::Fault { pile } => {
            let _ = piles[pile].sim.add_faults(&["cp_error".to_owned()]);
        }
        Act::Clear { pile } => piles[pile].sim.clear_faults(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daily_connector_sees_a_few_sessions_a_day_and_each_ev_leaves_once() {
        let mut plan = Plan::new(Scenario::Daily, 7, 100, 2);
        let (mut arrivals, mut leaves, mut faults, mut cards) = (0, 0, 0, 0);
        let mut now = Duration::ZERO;
        let week = 7 * 24 * HOUR;
        while now < week {
            now += MINUTE;
            for act in plan.due(now, 4) {
                match act {
                    Act::Arrive { card, ev, .. } => {
                        arrivals += 1;
                        cards += usize::from(card.is_some());
                        let wh = ev.energy_wh.unwrap();
                        assert!((5000.0..=40_000.0).contains(&wh));
                    }
                    Act::Leave { .. } => leaves += 1,
                    Act::Fault { .. } => faults += 1,
                    Act::Clear { .. } => {}
                }
            }
        }
        // 200 connectors, a week: about 3 sessions a day each, less the time they charge.
        let per_day = arrivals as f64 / 200.0 / 7.0;
        assert!((1.5..3.5).contains(&per_day), "{per_day} sessions a day");
        assert!(arrivals - leaves <= 200, "each EV leaves once");
        // 100 piles, one fault every two days each.
        assert!((280..=420).contains(&faults), "{faults} faults a week");
        let share = cards as f64 / arrivals as f64;
        assert!((0.55..0.78).contains(&share), "{share} by card");
        let card_piles = (0..300).filter(|n| is_card_pile(*n, 2.0 / 3.0)).count();
        assert_eq!(card_piles, 200, "two piles in three, spread evenly");
        assert_eq!((0..10).filter(|n| is_card_pile(*n, 1.0)).count(), 10);
        // Without idTags, all sessions are plug-and-charge.
        let mut plan = Plan::new(Scenario::Daily, 7, 10, 1);
        let acts = plan.due(week, 0);
        assert!(acts
            .iter()
            .all(|a| !matches!(a, Act::Arrive { card: Some(_), .. })));
    }

    #[test]
    fn a_busy_connector_charges_most_of_the_time_and_idle_does_nothing() {
        let mut plan = Plan::new(Scenario::Busy, 3, 50, 1);
        let mut plugged = [false; 50];
        let (mut plugged_minutes, mut minutes) = (0u64, 0u64);
        let mut now = Duration::ZERO;
        while now < 24 * HOUR {
            now += MINUTE;
            for act in plan.due(now, 0) {
                match act {
                    Act::Arrive { pile, ev, .. } => {
                        assert_eq!(ev.energy_wh, None, "never full");
                        assert!(!plugged[pile]);
                        plugged[pile] = true;
                    }
                    Act::Leave { pile, .. } => {
                        assert!(plugged[pile]);
                        plugged[pile] = false;
                    }
                    _ => panic!("no faults when busy"),
                }
            }
            plugged_minutes += plugged.iter().filter(|p| **p).count() as u64;
            minutes += 50;
        }
        let share = plugged_minutes as f64 / minutes as f64;
        assert!(share > 0.85, "{share} of the time charging");
        assert_eq!(Plan::new(Scenario::Idle, 3, 50, 2).next_due(), None);
    }
}
