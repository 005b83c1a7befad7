//! Whatever happens at the pile, the StatusNotifications it sends for each connector follow the
//! transition table of OCPP 1.6 (SPEC-FACTS.md, section 2), and connector 0 is only ever
//! Available, Unavailable or Faulted.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pile::faults::Fault;
use pile::hardware::Pilot;
use pile::{ChargePoint, Input, Output};
use proptest::prelude::*;
use serde_json::json;

/// The connector statuses, in the column order of the table in SPEC-FACTS.md.
const STATUSES: [&str; 9] = [
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEV",
    "SuspendedEVSE",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
];

/// The allowed (from, to) pairs, read from the table in SPEC-FACTS.md.
fn allowed_transitions() -> BTreeSet<(String, String)> {
    let path = common::ocpp16_dir();
    let facts = std::fs::read_to_string(path.join("SPEC-FACTS.md")).expect("SPEC-FACTS.md");
    let names = STATUSES;
    let mut allowed = BTreeSet::new();
    for line in facts.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // Rows look like `| A Available | — | A2 | ...`.
        let Some(from) = cells.get(1).and_then(|c| c.split_once(' ')).map(|(_, n)| n) else {
            continue;
        };
        if !names.contains(&from) || cells.len() < 11 {
            continue;
        }
        for (i, cell) in cells[2..11].iter().enumerate() {
            if cell.starts_with(|c: char| c.is_ascii_uppercase()) {
                allowed.insert((from.to_owned(), names[i].to_owned()));
            }
        }
    }
    assert_eq!(
        allowed.len(),
        53,
        "the table in SPEC-FACTS.md has 53 transitions"
    );
    allowed
}

#[derive(Debug, Clone)]
enum Step {
    Plug(u32, bool),
    Faults(Vec<Fault>),
    Availability(u32, bool),
    Wait(u64),
    FaultMask(u32),
    MinimumStatusDuration(u64),
    /// The EV asks for energy (C) or not (B).
    Pilot(u32, bool),
    Card(Option<u32>, &'static str),
    PlugAndCharge(bool),
    StopOnEvSideDisconnect(bool),
    RemoteStart(u32, &'static str),
    RemoteStop(i32),
    Unlock(u32),
    Cable(u32, Option<u8>),
    Temperature(u32, f64),
    /// ReserveNow: connector, idTag, reservationId, minutes until it expires.
    Reserve(u32, &'static str, i32, u64),
    Cancel(i32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1u32..=2, any::<bool>()).prop_map(|(c, p)| Step::Plug(c, p)),
        2 => proptest::sample::subsequence(Fault::ALL.to_vec(), 0..3).prop_map(Step::Faults),
        2 => (0u32..=2, any::<bool>()).prop_map(|(c, op)| Step::Availability(c, op)),
        3 => prop_oneof![1u64..10, 100u64..200].prop_map(Step::Wait),
        1 => prop_oneof![Just(0u32), Just(2), Just(768), Just(0x1FF03)].prop_map(Step::FaultMask),
        1 => prop_oneof![Just(0u64), Just(5), Just(150)].prop_map(Step::MinimumStatusDuration),
        3 => (1u32..=2, any::<bool>()).prop_map(|(c, p)| Step::Pilot(c, p)),
        3 => (proptest::option::of(1u32..=2), prop_oneof![Just("CARD1"), Just("CARD2"), Just("BAD1")])
            .prop_map(|(c, t)| Step::Card(c, t)),
        1 => any::<bool>().prop_map(Step::PlugAndCharge),
        1 => any::<bool>().prop_map(Step::StopOnEvSideDisconnect),
        1 => (1u32..=2, prop_oneof![Just("CARD1"), Just("BAD2")]).prop_map(|(c, t)| Step::RemoteStart(c, t)),
        1 => (1i32..20).prop_map(Step::RemoteStop),
        1 => (1u32..=2).prop_map(Step::Unlock),
        1 => (1u32..=2, proptest::option::of(prop_oneof![Just(0u8), Just(16), Just(32)])).prop_map(|(c, a)| Step::Cable(c, a)),
        1 => (1u32..=2, prop_oneof![Just(25.0), Just(80.0)]).prop_map(|(c, t)| Step::Temperature(c, t)),
        2 => (0u32..=2, prop_oneof![Just("CARD1"), Just("CARD2")], 1i32..=3, 1u64..=5)
            .prop_map(|(c, t, id, m)| Step::Reserve(c, t, id, m)),
        1 => (1i32..=3).prop_map(Step::Cancel),
    ]
}

fn run(
    steps: &[Step],
    allowed: &BTreeSet<(String, String)>,
    seen: &RefCell<BTreeSet<String>>,
) -> Result<(), TestCaseError> {
    let mut cp = common::pile(2);
    let mut now = Duration::ZERO;
    let mut last: BTreeMap<i64, String> = BTreeMap::new();
    let mut id = 0;

    // Answers every CALL, checking each StatusNotification against the previous one.
    let mut absorb =
        |cp: &mut ChargePoint, out: Vec<Output>, now: Duration| -> Result<(), TestCaseError> {
            common::answer_all(cp, common::sends(out), now, |frame| {
                if frame[2] != "StatusNotification" {
                    return Ok(());
                }
                let c = frame[3]["connectorId"].as_i64().unwrap();
                let to = frame[3]["status"].as_str().unwrap().to_owned();
                if c == 0 {
                    prop_assert!(
                        ["Available", "Unavailable", "Faulted"].contains(&to.as_str()),
                        "connector 0 is {to}"
                    );
                } else if let Some(from) = last.get(&c) {
                    prop_assert!(
                        from == &to || allowed.contains(&(from.clone(), to.clone())),
                        "connector {c}: {from} -> {to}"
                    );
                }
                if c > 0 {
                    seen.borrow_mut().insert(to.clone());
                }
                last.insert(c, to);
                Ok(())
            })
        };

    let out = cp.handle(Input::Connected, now);
    absorb(&mut cp, out, now)?;
    let mut reading = pile::hardware::MeterReading {
        energy_wh: 1000,
        power_w: 0.0,
        current_a: 0.0,
        offered_a: 0.0,
        voltage_v: 230.0,
        frequency_hz: 50.0,
        temperatures_c: vec![25.0],
    };
    let central = |cp: &mut ChargePoint,
                   id: &mut u32,
                   action: &str,
                   payload: serde_json::Value,
                   now: Duration| {
        *id += 1;
        let frame = json!([2, format!("c{id}"), action, payload]).to_string();
        cp.handle(Input::Frame(&frame), now)
    };
    for step in steps {
        let out = match step {
            Step::Pilot(c, asks) => cp.handle(
                Input::Pilot {
                    connector: *c,
                    state: if *asks { Pilot::C } else { Pilot::B },
                },
                now,
            ),
            Step::Card(c, tag) => cp.handle(
                Input::Card {
                    connector: *c,
                    id_tag: tag,
                },
                now,
            ),
            Step::PlugAndCharge(on) => central(
                &mut cp,
                &mut id,
                "ChangeConfiguration",
                json!({"key": "VendorDirectWorkMode", "value": on.to_string()}),
                now,
            ),
            Step::StopOnEvSideDisconnect(on) => central(
                &mut cp,
                &mut id,
                "ChangeConfiguration",
                json!({"key": "StopTransactionOnEVSideDisconnect", "value": on.to_string()}),
                now,
            ),
            Step::RemoteStart(c, tag) => central(
                &mut cp,
                &mut id,
                "RemoteStartTransaction",
                json!({"connectorId": c, "idTag": tag}),
                now,
            ),
            Step::RemoteStop(tx) => central(
                &mut cp,
                &mut id,
                "RemoteStopTransaction",
                json!({"transactionId": tx}),
                now,
            ),
            Step::Reserve(c, tag, reservation, minutes) => {
                // The pile's clock starts at 2026-01-01T00:00:00Z (common::pile).
                let expiry = chrono::DateTime::UNIX_EPOCH
                    + chrono::Duration::seconds(
                        1_767_225_600 + (now.as_secs() + minutes * 60) as i64,
                    );
                central(
                    &mut cp,
                    &mut id,
                    "ReserveNow",
                    json!({"connectorId": c, "idTag": tag, "reservationId": reservation,
                           "expiryDate": expiry.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()}),
                    now,
                )
            }
            Step::Cancel(reservation) => central(
                &mut cp,
                &mut id,
                "CancelReservation",
                json!({"reservationId": reservation}),
                now,
            ),
            Step::Unlock(c) => central(
                &mut cp,
                &mut id,
                "UnlockConnector",
                json!({"connectorId": c}),
                now,
            ),
            Step::Cable(c, amps) => cp.handle(
                Input::Cable {
                    connector: *c,
                    amps: amps.map(f64::from),
                },
                now,
            ),
            Step::Temperature(c, t) => {
                reading.temperatures_c = vec![*t];
                reading.energy_wh += 100;
                cp.handle(
                    Input::Meter {
                        connector: *c,
                        reading: &reading,
                    },
                    now,
                )
            }
            Step::Plug(c, plugged) => cp.handle(
                Input::Plug {
                    connector: *c,
                    plugged: *plugged,
                },
                now,
            ),
            Step::Faults(f) => {
                let set: BTreeSet<Fault> = f.iter().copied().collect();
                cp.handle(Input::Faults(&set), now)
            }
            Step::Availability(c, operative) => {
                id += 1;
                let kind = if *operative {
                    "Operative"
                } else {
                    "Inoperative"
                };
                let frame = json!([2, format!("a{id}"), "ChangeAvailability", {"connectorId": c, "type": kind}]).to_string();
                cp.handle(Input::Frame(&frame), now)
            }
            Step::Wait(s) => {
                let end = now + Duration::from_secs(*s);
                let mut out = Vec::new();
                while let Some(d) = cp.next_deadline().filter(|d| *d <= end) {
                    now = d.max(now);
                    out.extend(cp.handle(Input::Tick, now));
                    absorb(&mut cp, std::mem::take(&mut out), now)?;
                }
                now = end;
                cp.handle(Input::Tick, now)
            }
            Step::MinimumStatusDuration(d) => {
                id += 1;
                let frame = json!([2, format!("d{id}"), "ChangeConfiguration", {"key": "MinimumStatusDuration", "value": d.to_string()}]).to_string();
                cp.handle(Input::Frame(&frame), now)
            }
            Step::FaultMask(m) => {
                id += 1;
                let frame = json!([2, format!("m{id}"), "ChangeConfiguration", {"key": "OEM_FaultMask", "value": m.to_string()}]).to_string();
                cp.handle(Input::Frame(&frame), now)
            }
        };
        absorb(&mut cp, out, now)?;
    }
    Ok(())
}

#[test]
fn status_notifications_follow_the_transition_table() {
    let allowed = allowed_transitions();
    let seen = RefCell::new(BTreeSet::new());
    common::runner(3000)
        .run(&proptest::collection::vec(step(), 1..40), |steps| {
            run(&steps, &allowed, &seen)
        })
        .unwrap();
    // The steps reach every status a connector can show.
    let seen = seen.into_inner();
    for status in STATUSES {
        assert!(seen.contains(status), "{status} never reported: {seen:?}");
    }
}
