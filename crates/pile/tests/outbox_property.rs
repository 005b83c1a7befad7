//! Whatever happens (plugs, cards, meter readings, time, connections that drop, answers that
//! never come, crashes at any step), once the pile is back online every transaction it started
//! reaches the central system exactly as it happened: one StartTransaction and one
//! StopTransaction, its meter values between them, a message id never reused for another
//! message, the meter never going back.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use common::harness::Pile;
use common::schemas::Schemas;
use pile::hardware::{MeterReading, Pilot};
use pile::{Input, Options, Output};
use proptest::prelude::*;
use serde_json::{json, Value};

#[derive(Debug, Clone)]
enum Step {
    Plug(u32, bool),
    Pilot(u32, bool),
    Card(u32, &'static str),
    /// The meter of a connector moves on by this many Wh.
    Energy(u32, i64),
    Wait(u64),
    Connect,
    Disconnect,
    /// The process dies: a new core from the durable state, nothing plugged.
    Crash,
    /// The central stops answering, or answers again.
    Mute(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u32..=2, any::<bool>()).prop_map(|(c, p)| Step::Plug(c, p)),
        2 => (1u32..=2, any::<bool>()).prop_map(|(c, p)| Step::Pilot(c, p)),
        2 => (1u32..=2, prop_oneof![Just("SN0001"), Just("CARD1")]).prop_map(|(c, t)| Step::Card(c, t)),
        3 => (1u32..=2, 0i64..2000).prop_map(|(c, e)| Step::Energy(c, e)),
        4 => prop_oneof![1u64..30, 30u64..200, 600u64..4000].prop_map(Step::Wait),
        2 => Just(Step::Connect),
        2 => Just(Step::Disconnect),
        1 => Just(Step::Crash),
        1 => any::<bool>().prop_map(Step::Mute),
    ]
}

/// Our central system: answers (unless muted), numbers transactions by the message id of their
/// StartTransaction, and keeps every transaction message it received.
struct Central {
    schemas: Rc<Schemas>,
    /// What did not validate.
    invalid: Vec<String>,
    /// The time on the central's clock, since 2026-11-24T12:00:00Z.
    clock: Duration,
    connected: bool,
    muted: bool,
    /// The time that passed before the pile's current start (its clock starts at zero).
    offset: Duration,
    /// (message id, action, payload) of every transaction message received, repeats included.
    received: Vec<(String, String, Value)>,
    tx_ids: BTreeMap<String, i64>,
}

impl Central {
    fn answer(&mut self, call: &Value) -> Value {
        let now = (chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z").unwrap()
            + chrono::Duration::from_std(self.clock).unwrap())
        .to_utc()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
        let id = call[1].as_str().unwrap().to_owned();
        let action = call[2].as_str().unwrap();
        if ["StartTransaction", "MeterValues", "StopTransaction"].contains(&action) {
            self.received
                .push((id.clone(), action.to_owned(), call[3].clone()));
        }
        match action {
            "BootNotification" => {
                json!({"status":"Accepted","currentTime": now,"interval":900})
            }
            "Heartbeat" => json!({"currentTime": now}),
            "Authorize" => json!({"idTagInfo": {"status": "Accepted"}}),
            "StartTransaction" => {
                let next = self.tx_ids.len() as i64 + 1;
                let tx = *self.tx_ids.entry(id).or_insert(next);
                json!({"transactionId": tx, "idTagInfo": {"status": "Accepted"}})
            }
            _ => json!({}),
        }
    }

    /// Takes what the pile did: frames reach the central only while connected.
    fn take(&mut self, p: &mut Pile, out: Vec<Output>) {
        self.clock = self.offset + p.now;
        let mut queue: std::collections::VecDeque<Value> = Pile::frames(&out).into();
        while let Some(frame) = queue.pop_front() {
            if !self.connected || frame[0] != 2 {
                continue;
            }
            // Every message the pile sends validates against the official schema.
            if let Err(e) = self.schemas.check_call(&frame) {
                self.invalid.push(e);
            }
            if self.muted {
                // Received, never answered.
                let answer = self.answer(&frame);
                let _ = answer;
                continue;
            }
            let answer = self.answer(&frame);
            queue.extend(Pile::frames(&p.reply(&frame, answer)));
        }
    }
}

fn reading(wh: i64) -> MeterReading {
    MeterReading {
        energy_wh: wh,
        power_w: 0.0,
        current_a: 0.0,
        offered_a: 0.0,
        voltage_v: 230.0,
        frequency_hz: 50.0,
        temperatures_c: vec![25.0],
    }
}

fn advance(p: &mut Pile, c: &mut Central, secs: u64) -> Result<(), TestCaseError> {
    let end = p.now + Duration::from_secs(secs);
    let mut wakes = 0;
    while let Some(d) = p.cp.next_deadline().filter(|d| *d <= end) {
        wakes += 1;
        // A deadline that does not move on would spin the shell.
        prop_assert!(
            wakes < 10_000,
            "the core keeps asking to be woken at {:?}",
            d
        );
        p.now = d.max(p.now);
        let out = p.input(Input::Tick);
        c.take(p, out);
    }
    p.now = end;
    let out = p.input(Input::Tick);
    c.take(p, out);
    Ok(())
}

fn note_started(p: &Pile, started: &mut BTreeSet<u64>) {
    for n in 1..=2 {
        if let Some(tx) = p.cp.transaction(n) {
            started.insert(tx.local_id);
        }
    }
}

fn run(steps: &[Step], schemas: &Rc<Schemas>) -> Result<(), TestCaseError> {
    let mut p = Pile::new(2);
    let mut c = Central {
        schemas: schemas.clone(),
        invalid: Vec::new(),
        clock: Duration::ZERO,
        connected: false,
        muted: false,
        offset: Duration::ZERO,
        received: Vec::new(),
        tx_ids: BTreeMap::new(),
    };
    // StopTransaction carries samples too (its schema spells the unit Celcius).
    let (change, _) = p.cp.provision(
        "StopTxnSampledData",
        "Energy.Active.Import.Register,Temperature",
        p.now,
    );
    prop_assert_eq!(change.status, ocpp::ConfigurationStatus::Accepted);
    let mut energy: BTreeMap<u32, i64> = BTreeMap::new();
    // Every transaction the core started, by its own number.
    let mut started: BTreeSet<u64> = BTreeSet::new();
    for step in steps {
        let out = match step {
            Step::Plug(n, plugged) => p.input(Input::Plug {
                connector: *n,
                plugged: *plugged,
            }),
            Step::Pilot(n, asks) => p.input(Input::Pilot {
                connector: *n,
                state: if *asks { Pilot::C } else { Pilot::B },
            }),
            Step::Card(n, tag) => p.input(Input::Card {
                connector: Some(*n),
                id_tag: tag,
            }),
            Step::Energy(n, wh) => {
                let e = energy.entry(*n).or_default();
                *e += wh;
                let r = reading(*e);
                p.input(Input::Meter {
                    connector: *n,
                    reading: &r,
                })
            }
            Step::Wait(s) => {
                advance(&mut p, &mut c, *s)?;
                Vec::new()
            }
            Step::Connect => {
                c.connected = true;
                p.input(Input::Connected)
            }
            Step::Disconnect => {
                c.connected = false;
                p.input(Input::Disconnected)
            }
            Step::Crash => {
                c.connected = false;
                // The restarted core's monotonic clock starts at zero; its wall clock goes on.
                c.offset += p.now;
                let wall = chrono::DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
                    .unwrap()
                    .to_utc()
                    + chrono::Duration::from_std(c.offset).unwrap();
                p = Pile::started_at(2, p.cp.durable().clone(), Options::default(), wall);
                for (n, e) in &energy {
                    let r = reading(*e);
                    p.input(Input::Meter {
                        connector: *n,
                        reading: &r,
                    });
                }
                Vec::new()
            }
            Step::Mute(m) => {
                c.muted = *m;
                Vec::new()
            }
        };
        c.take(&mut p, out);
        note_started(&p, &mut started);
    }
    // Back online for good: everything goes out.
    c.muted = false;
    c.connected = true;
    let out = p.input(Input::Disconnected);
    c.take(&mut p, out);
    let out = p.input(Input::Connected);
    c.take(&mut p, out);
    note_started(&p, &mut started);
    // Stop what runs, then let the outbox drain (timeouts and retries included).
    for n in 1..=2 {
        let out = p.input(Input::Plug {
            connector: n,
            plugged: false,
        });
        c.take(&mut p, out);
        if let Some(tag) = p.cp.transaction(n).map(|t| t.id_tag.clone()) {
            let out = p.input(Input::Card {
                connector: Some(n),
                id_tag: &tag,
            });
            c.take(&mut p, out);
        }
        note_started(&p, &mut started);
    }
    for _ in 0..20 {
        if p.cp.outbox_len() == 0 {
            break;
        }
        advance(&mut p, &mut c, 120)?;
    }
    prop_assert_eq!(p.cp.outbox_len(), 0, "the outbox drains");
    prop_assert!(c.invalid.is_empty(), "{:?}", c.invalid);

    // A message id is one message, however often it came.
    let mut by_id: BTreeMap<&str, (&str, &Value)> = BTreeMap::new();
    for (id, action, payload) in &c.received {
        if let Some((a, v)) = by_id.insert(id, (action, payload)) {
            prop_assert!(a == action && v == payload, "id {} reused", id);
        }
    }
    let starts: Vec<(&str, &Value)> = by_id
        .iter()
        .filter(|(_, (a, _))| *a == "StartTransaction")
        .map(|(id, (_, v))| (*id, *v))
        .collect();
    prop_assert_eq!(
        starts.len(),
        started.len(),
        "every transaction started reached the central"
    );
    for (id, start) in starts {
        let tx = c.tx_ids[id];
        let stops: Vec<&Value> = by_id
            .values()
            .filter(|(a, v)| *a == "StopTransaction" && v["transactionId"] == tx)
            .map(|(_, v)| *v)
            .collect();
        prop_assert_eq!(stops.len(), 1, "transaction {}: one StopTransaction", tx);
        let stop = stops[0];
        prop_assert!(stop["meterStop"].as_i64() >= start["meterStart"].as_i64());
        for (_, (a, v)) in by_id.iter() {
            if *a == "MeterValues" && v["transactionId"] == tx {
                let t = v["meterValue"][0]["timestamp"].as_str().unwrap();
                prop_assert!(t >= start["timestamp"].as_str().unwrap());
            }
        }
    }
    Ok(())
}

#[test]
fn no_transaction_message_is_lost_or_repeated_as_another() {
    let schemas = Rc::new(Schemas::load());
    common::runner(400)
        .run(&proptest::collection::vec(step(), 1..50), |steps| {
            run(&steps, &schemas)
        })
        .unwrap();
}
