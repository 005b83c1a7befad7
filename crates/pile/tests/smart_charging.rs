//! Charging profiles on the sans-I/O core: what the pilot offers under them, over simulated
//! time, and the answers to SetChargingProfile, ClearChargingProfile and GetCompositeSchedule.

mod common;

use common::harness::{secs, Pile};
use pile::hardware::Pilot;
use pile::{Input, Output};
use serde_json::{json, Value};

/// Answers every CALL with what a central system would, transactions numbered from 1.
fn serve(p: &mut Pile, out: Vec<Output>) -> Vec<Value> {
    let mut queue: std::collections::VecDeque<Value> = Pile::frames(&out).into();
    let mut seen = Vec::new();
    let mut tx = 0;
    while let Some(f) = queue.pop_front() {
        if f[0] != 2 {
            continue;
        }
        let answer = match f[2].as_str().unwrap() {
            "BootNotification" => {
                json!({"status":"Accepted","currentTime":"2026-11-24T12:00:00.000Z","interval":900})
            }
            "StartTransaction" => {
                tx += 1;
                json!({"transactionId": tx, "idTagInfo": {"status": "Accepted"}})
            }
            _ => json!({}),
        };
        seen.push(f.clone());
        queue.extend(Pile::frames(&p.reply(&f, answer)));
    }
    seen
}

fn booted(connectors: u32) -> Pile {
    let mut p = Pile::new(connectors);
    let out = p.input(Input::Connected);
    serve(&mut p, out);
    p
}

fn charge(p: &mut Pile, connector: u32) {
    let out = p.input(Input::Plug {
        connector,
        plugged: true,
    });
    serve(p, out);
    let out = p.input(Input::Pilot {
        connector,
        state: Pilot::C,
    });
    serve(p, out);
}

/// Sends a CALL of the central; returns its answer's payload (serving what follows).
fn call(p: &mut Pile, action: &str, payload: Value) -> Value {
    let out = p.central_calls(action, payload);
    let answer = Pile::frames(&out)[0][2].clone();
    serve(p, out);
    answer
}

fn profile(id: i64, purpose: &str, level: i64, unit: &str, periods: &[(i64, f64)]) -> Value {
    json!({
        "chargingProfileId": id,
        "stackLevel": level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "startSchedule": "2026-11-24T12:00:00.000Z",
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods.iter().map(|(s, l)| json!({"startPeriod": s, "limit": l})).collect::<Vec<_>>()
        }
    })
}

fn set(p: &mut Pile, connector: u32, profile: Value) -> String {
    call(
        p,
        "SetChargingProfile",
        json!({"connectorId": connector, "csChargingProfiles": profile}),
    )["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_default_profile_shapes_the_offer_over_time() {
    let mut p = booted(1);
    let out = p.central_calls(
        "SetChargingProfile",
        json!({"connectorId": 0, "csChargingProfiles": profile(1, "TxDefaultProfile", 0, "A", &[(0, 16.0), (600, 0.0), (1200, 10.0)])}),
    );
    assert_eq!(out[0], Output::Persist, "durable before the answer");
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    charge(&mut p, 1);
    assert_eq!(p.cp.offered(1), Some(16.0));
    assert_eq!(p.cp.status(1), ocpp::ChargePointStatus::Charging);
    // At 12:10 the limit drops to 0: the relay opens, SuspendedEVSE.
    let out = p.advance(secs(600));
    assert!(
        out.contains(&Output::Hardware(pile::hardware::HardwareCommand::Relay {
            connector: 1,
            closed: false
        }))
    );
    let sent = serve(&mut p, out);
    assert!(sent
        .iter()
        .any(|f| f[2] == "StatusNotification" && f[3]["status"] == "SuspendedEVSE"));
    // At 12:20, 10 A: Charging again.
    let sent = {
        let out = p.advance(secs(600));
        serve(&mut p, out)
    };
    assert_eq!(p.cp.offered(1), Some(10.0));
    assert!(sent
        .iter()
        .any(|f| f[2] == "StatusNotification" && f[3]["status"] == "Charging"));
}

#[test]
fn tx_profiles_stack_levels_and_the_pile_maximum() {
    let mut p = booted(2);
    // A TxProfile needs a transaction on its connector.
    assert_eq!(
        set(&mut p, 1, profile(5, "TxProfile", 0, "A", &[(0, 10.0)])),
        "Rejected"
    );
    charge(&mut p, 1);
    assert_eq!(
        set(&mut p, 1, profile(5, "TxProfile", 0, "A", &[(0, 10.0)])),
        "Accepted"
    );
    assert_eq!(p.cp.offered(1), Some(10.0));
    // It overrules the default; within a purpose the highest stack level counts; W are
    // turned into A at 230 V.
    assert_eq!(
        set(
            &mut p,
            0,
            profile(6, "TxDefaultProfile", 0, "A", &[(0, 20.0)])
        ),
        "Accepted"
    );
    assert_eq!(p.cp.offered(1), Some(10.0));
    assert_eq!(
        set(&mut p, 1, profile(7, "TxProfile", 1, "W", &[(0, 2760.0)])),
        "Accepted"
    );
    assert_eq!(p.cp.offered(1), Some(12.0));
    // The pile's maximum is shared among the connectors that charge.
    assert_eq!(
        set(
            &mut p,
            0,
            profile(8, "ChargePointMaxProfile", 0, "A", &[(0, 16.0)])
        ),
        "Accepted"
    );
    assert_eq!(p.cp.offered(1), Some(12.0));
    charge(&mut p, 2);
    assert_eq!(p.cp.offered(1), Some(8.0));
    assert_eq!(p.cp.offered(2), Some(8.0));
    // The transaction ends: its TxProfiles go.
    let out = p.input(Input::Card {
        connector: Some(1),
        id_tag: "SN0001",
    });
    serve(&mut p, out);
    assert!(p
        .cp
        .durable()
        .profiles()
        .iter()
        .all(|i| i.profile.charging_profile_purpose != ocpp::ChargingProfilePurpose::TxProfile));
    assert_eq!(p.cp.offered(2), Some(16.0));
}

#[test]
fn profiles_that_do_not_fit_are_rejected() {
    let mut p = booted(1);
    for (connector, bad) in [
        (1, profile(1, "ChargePointMaxProfile", 0, "A", &[(0, 10.0)])),
        (0, profile(1, "TxDefaultProfile", 9, "A", &[(0, 10.0)])),
        (0, profile(1, "TxDefaultProfile", 0, "A", &[(5, 10.0)])),
        (
            0,
            profile(1, "TxDefaultProfile", 0, "A", &[(0, 10.0), (0, 8.0)]),
        ),
        (2, profile(1, "TxDefaultProfile", 0, "A", &[(0, 10.0)])),
    ] {
        assert_eq!(set(&mut p, connector, bad.clone()), "Rejected", "{bad}");
    }
    let mut relative = profile(1, "TxDefaultProfile", 0, "A", &[(0, 10.0)]);
    relative["chargingProfileKind"] = json!("Recurring");
    assert_eq!(set(&mut p, 0, relative), "Rejected", "no recurrencyKind");
    // MaxChargingProfilesInstalled (16).
    for i in 0..16 {
        let level = i % 9;
        let connector = (i / 9) as u32;
        assert_eq!(
            set(
                &mut p,
                connector,
                profile(100 + i, "TxDefaultProfile", level, "A", &[(0, 10.0)])
            ),
            "Accepted"
        );
    }
    assert_eq!(
        set(
            &mut p,
            1,
            profile(200, "TxDefaultProfile", 8, "A", &[(0, 10.0)])
        ),
        "Rejected"
    );
    // The same id replaces.
    assert_eq!(
        set(
            &mut p,
            1,
            profile(100, "TxDefaultProfile", 8, "A", &[(0, 10.0)])
        ),
        "Accepted"
    );
    assert_eq!(p.cp.durable().profiles().len(), 16);
}

#[test]
fn clear_charging_profile() {
    let mut p = booted(1);
    set(
        &mut p,
        0,
        profile(1, "TxDefaultProfile", 0, "A", &[(0, 10.0)]),
    );
    set(
        &mut p,
        0,
        profile(2, "TxDefaultProfile", 1, "A", &[(0, 12.0)]),
    );
    set(
        &mut p,
        0,
        profile(3, "ChargePointMaxProfile", 0, "A", &[(0, 20.0)]),
    );
    let clear = |p: &mut Pile, body: Value| call(p, "ClearChargingProfile", body)["status"].clone();
    assert_eq!(clear(&mut p, json!({"id": 9})), "Unknown");
    assert_eq!(
        clear(&mut p, json!({"id": 1, "stackLevel": 5})),
        "Accepted",
        "the id alone counts"
    );
    assert_eq!(
        clear(
            &mut p,
            json!({"chargingProfilePurpose": "ChargePointMaxProfile"})
        ),
        "Accepted"
    );
    assert_eq!(p.cp.durable().profiles().len(), 1);
    assert_eq!(clear(&mut p, json!({})), "Accepted");
    assert!(p.cp.durable().profiles().is_empty());
    assert_eq!(clear(&mut p, json!({})), "Unknown");
}

#[test]
fn composite_schedule() {
    let mut p = booted(1);
    set(
        &mut p,
        0,
        profile(
            1,
            "TxDefaultProfile",
            0,
            "A",
            &[(0, 16.0), (60, 8.0), (120, 40.0)],
        ),
    );
    let answer = call(
        &mut p,
        "GetCompositeSchedule",
        json!({"connectorId": 1, "duration": 300}),
    );
    assert_eq!(answer["status"], "Accepted");
    assert_eq!(answer["scheduleStart"], "2026-11-24T12:00:00.000Z");
    let schedule = &answer["chargingSchedule"];
    assert_eq!(schedule["chargingRateUnit"], "A");
    assert_eq!(schedule["duration"], 300);
    let periods: Vec<(i64, f64)> = schedule["chargingSchedulePeriod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["startPeriod"].as_i64().unwrap(),
                p["limit"].as_f64().unwrap(),
            )
        })
        .collect();
    // 40 A is above the rated 32 A.
    assert_eq!(periods, vec![(0, 16.0), (60, 8.0), (120, 32.0)]);
    let answer = call(
        &mut p,
        "GetCompositeSchedule",
        json!({"connectorId": 1, "duration": 30, "chargingRateUnit": "W"}),
    );
    assert_eq!(
        answer["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
        3680.0
    );
    let answer = call(
        &mut p,
        "GetCompositeSchedule",
        json!({"connectorId": 2, "duration": 30}),
    );
    assert_eq!(answer, json!({"status": "Rejected"}));
}

#[test]
fn faq_3_15_a_remote_start_carries_a_tx_profile() {
    let mut p = booted(1);
    let mut tx_profile = profile(4, "TxProfile", 0, "A", &[(0, 6.0)]);
    tx_profile["chargingProfileKind"] = json!("Relative");
    tx_profile["chargingSchedule"]
        .as_object_mut()
        .unwrap()
        .remove("startSchedule");
    let answer = call(
        &mut p,
        "RemoteStartTransaction",
        json!({"connectorId": 1, "idTag": "R1", "chargingProfile": tx_profile}),
    );
    assert_eq!(answer["status"], "Accepted");
    charge(&mut p, 1);
    assert_eq!(p.cp.transaction(1).unwrap().id_tag, "R1");
    assert_eq!(p.cp.offered(1), Some(6.0));
}
