//! Malformed input gets the right CALLERROR on the wire (or none, where OCPP-J says to ignore).

use std::time::Duration;

use ocpp::rpc::{Endpoint, Inbound};
use ocpp::Policy;
use serde_json::Value;

fn answer_to(text: &str) -> Option<(String, String)> {
    let mut ep = Endpoint::new(Policy::Strict, Duration::from_secs(30), "t");
    let inbound = ep.handle_frame(text, Duration::ZERO);
    let answer = ep.poll_transmit();
    assert!(ep.poll_transmit().is_none());
    match (inbound, answer) {
        (Inbound::Call { .. }, None) => Some(("accepted".into(), String::new())),
        (Inbound::Dropped(_), Some(frame)) => {
            let v: Value = serde_json::from_str(&frame).unwrap();
            let a = v.as_array().unwrap();
            assert_eq!(a.len(), 5, "{frame}");
            assert_eq!(a[0], 4);
            assert!(a[3].is_string());
            assert_eq!(a[4], serde_json::json!({}));
            Some((
                a[2].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            ))
        }
        (Inbound::Dropped(_), None) => None,
        (other, answer) => panic!("{text}: unexpected {other:?} / {answer:?}"),
    }
}

const BOOT_OK: &str = r#"{"chargePointVendor":"V","chargePointModel":"M"}"#;

fn profile(limit: &str) -> String {
    format!(
        r#"[2,"p","SetChargingProfile",{{"connectorId":1,"csChargingProfiles":{{"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute","chargingSchedule":{{"chargingRateUnit":"A","chargingSchedulePeriod":[{{"startPeriod":0,"limit":{limit}}}]}}}}}}]"#
    )
}

#[test]
fn malformed_frames_get_the_right_callerror() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let id36 = "a".repeat(36);
    let id37 = "a".repeat(37);
    let long_vendor = format!(
        r#"[2,"b","BootNotification",{{"chargePointVendor":"{}","chargePointModel":"M"}}]"#,
        "V".repeat(21)
    );
    let table: Vec<(String, Option<(&str, &str)>)> = vec![
        // Not a frame at all: answered with id -1.
        ("not json".into(), Some(("FormationViolation", "-1"))),
        ("".into(), Some(("FormationViolation", "-1"))),
        (r#"{"a":1}"#.into(), Some(("FormationViolation", "-1"))),
        ("[]".into(), Some(("FormationViolation", "-1"))),
        (r#"["2","x","Heartbeat",{}]"#.into(), Some(("FormationViolation", "-1"))),
        (r#"[2,123,"Heartbeat",{}]"#.into(), Some(("FormationViolation", "-1"))),
        (r#"[2]"#.into(), Some(("FormationViolation", "-1"))),
        (deep, Some(("FormationViolation", "-1"))),
        // Wrong arity.
        (r#"[2,"x","Heartbeat"]"#.into(), Some(("ProtocolError", "x"))),
        (r#"[2,"x","Heartbeat",{},{}]"#.into(), Some(("FormationViolation", "x"))),
        // Ids.
        (format!(r#"[2,"{id36}","Heartbeat",{{}}]"#), Some(("accepted", ""))),
        (format!(r#"[2,"{id37}","Heartbeat",{{}}]"#), Some(("FormationViolation", "-1"))),
        // Actions.
        (r#"[2,"x","FlyToTheMoon",{}]"#.into(), Some(("NotImplemented", "x"))),
        (r#"[2,"x",7,{}]"#.into(), Some(("FormationViolation", "x"))),
        // Payload shape.
        (r#"[2,"x","Heartbeat",[]]"#.into(), Some(("FormationViolation", "x"))),
        (r#"[2,"x","Heartbeat",null]"#.into(), Some(("FormationViolation", "x"))),
        (r#"[2,"x","Heartbeat",{"extra":1}]"#.into(), Some(("FormationViolation", "x"))),
        (format!(r#"[2,"x","BootNotification",{BOOT_OK}]"#), Some(("accepted", ""))),
        // Missing required fields.
        (r#"[2,"x","BootNotification",{"chargePointVendor":"V"}]"#.into(), Some(("OccurenceConstraintViolation", "x"))),
        (r#"[2,"x","Reset",{}]"#.into(), Some(("OccurenceConstraintViolation", "x"))),
        // Wrong types.
        (r#"[2,"x","BootNotification",{"chargePointVendor":1,"chargePointModel":"M"}]"#.into(), Some(("TypeConstraintViolation", "x"))),
        (r#"[2,"x","ChangeAvailability",{"connectorId":1.5,"type":"Operative"}]"#.into(), Some(("TypeConstraintViolation", "x"))),
        (r#"[2,"x","ChangeAvailability",{"connectorId":"1","type":"Operative"}]"#.into(), Some(("TypeConstraintViolation", "x"))),
        (r#"[2,"x","GetConfiguration",{"key":"HeartbeatInterval"}]"#.into(), Some(("TypeConstraintViolation", "x"))),
        // Values out of range, enumeration or format.
        (long_vendor, Some(("PropertyConstraintViolation", "b"))),
        (r#"[2,"x","Reset",{"type":"Medium"}]"#.into(), Some(("PropertyConstraintViolation", "x"))),
        (r#"[2,"x","ChangeAvailability",{"connectorId":99999999999,"type":"Operative"}]"#.into(), Some(("PropertyConstraintViolation", "x"))),
        (r#"[2,"x","UpdateFirmware",{"location":"not a uri","retrieveDate":"2026-01-01T00:00:00Z"}]"#.into(), Some(("PropertyConstraintViolation", "x"))),
        (r#"[2,"x","UpdateFirmware",{"location":"http://h/f","retrieveDate":"yesterday"}]"#.into(), Some(("PropertyConstraintViolation", "x"))),
        (r#"[2,"x","UpdateFirmware",{"location":"http://h/f","retrieveDate":"2026-01-01T00:00:00+01:00"}]"#.into(), Some(("PropertyConstraintViolation", "x"))),
        (r#"[2,"x","ChangeConfiguration",{"key":"K","value":"V"}]"#.into(), Some(("accepted", ""))),
        (profile("10.05").replace("\"p\"", "\"p1\""), Some(("PropertyConstraintViolation", "p1"))),
        (profile("16.1"), Some(("accepted", ""))),
        // Never answered: unknown message types, replies nobody waits for, broken replies.
        (r#"[5,"x",{}]"#.into(), None),
        (r#"[3,"x",{}]"#.into(), None),
        (r#"[3]"#.into(), None),
        (r#"[4,"x","GenericError","",{}]"#.into(), None),
        (r#"[4,"x",1,2,3]"#.into(), None),
    ];
    let mut failures = Vec::new();
    for (input, expected) in &table {
        let got = answer_to(input);
        let expected = expected.map(|(c, i)| (c.to_owned(), i.to_owned()));
        if got != expected {
            failures.push(format!("{:.80}: expected {expected:?}, got {got:?}", input));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
