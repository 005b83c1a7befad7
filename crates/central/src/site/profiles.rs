//! The charging profiles a site sends its piles, as OCPP payloads: the TxDefaultProfile at the
//! fail-safe current (at every boot), a session's TxProfile at its limit, and the TxProfile a
//! RemoteStartTransaction carries (FAQ 3.15). Each is one period from the start of the
//! transaction (Relative), so that no clock of the pile matters, at the pile's highest stack
//! level, with an id of its own per connector: a new one replaces the one before.

use serde_json::{json, Value};

use super::allocator::{SetLimit, Unit};
use super::policy::VOLTS_PER_PHASE;

/// The chargingProfileId of the site's TxDefaultProfile; a connector's TxProfile is this plus
/// the connector.
pub const PROFILE_ID: i32 = 18_000;
/// The chargingProfileId of a remote start's TxProfile when it names no connector (not the
/// TxDefaultProfile's, which it would replace).
pub const REMOTE_START_ID: i32 = PROFILE_ID + 999;

fn schedule(unit: Unit, amps: f64, phases: u8) -> Value {
    let (unit, limit) = match unit {
        Unit::A => ("A", amps),
        Unit::W => ("W", amps * VOLTS_PER_PHASE * f64::from(phases)),
    };
    json!({
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{
            "startPeriod": 0,
            "limit": (limit * 10.0).floor() / 10.0,
            "numberPhases": phases,
        }],
    })
}

/// The SetChargingProfile payload of a session's limit.
pub fn tx_profile(limit: &SetLimit) -> Value {
    json!({
        "connectorId": limit.connector,
        "csChargingProfiles": {
            "chargingProfileId": PROFILE_ID + limit.connector as i32,
            "transactionId": limit.transaction,
            "stackLevel": limit.stack_level,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": schedule(limit.unit, limit.amps, limit.phases),
        },
    })
}

/// The SetChargingProfile payload of the TxDefaultProfile (`connector` 0: every connector of
/// the pile): what a session draws until its own profile comes, and while its pile is cut off
/// from the central.
pub fn default_profile(
    connector: u32,
    stack_level: u32,
    unit: Unit,
    failsafe_a: f64,
    phases: u8,
) -> Value {
    json!({
        "connectorId": connector,
        "csChargingProfiles": {
            "chargingProfileId": PROFILE_ID,
            "stackLevel": stack_level,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": schedule(unit, failsafe_a, phases),
        },
    })
}

/// The chargingProfile of a RemoteStartTransaction on a pile of a site: a TxProfile without
/// transactionId (FAQ 3.15) at `amps`, replaced by the session's own once it has started.
pub fn remote_start_profile(
    connector: Option<u32>,
    stack_level: u32,
    unit: Unit,
    amps: f64,
    phases: u8,
) -> Value {
    json!({
        "chargingProfileId": connector.map_or(REMOTE_START_ID, |c| PROFILE_ID + c as i32),
        "stackLevel": stack_level,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": schedule(unit, amps, phases),
    })
}

/// The ClearChargingProfile payloads that take the site's profiles off a pile that leaves it:
/// its TxDefaultProfile and each connector's TxProfile (by id: nobody else's are touched).
pub fn clear_profiles(connectors: u32) -> Vec<Value> {
    (0..=connectors)
        .map(|c| json!({"id": PROFILE_ID + c as i32}))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn validator(name: &str) -> jsonschema::Validator {
        let dir = std::env::var("OCPP16_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ocpp16")
            });
        let path = dir.join("schemas").join(format!("{name}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (set OCPP16_DIR)", path.display()));
        let schema: Value = serde_json::from_str(&text).unwrap();
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap()
    }

    fn check(v: &jsonschema::Validator, payload: &Value) {
        let errors: Vec<String> = v.iter_errors(payload).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{payload}: {errors:?}");
    }

    #[test]
    fn the_profiles_validate_against_the_official_schemas_and_decode_strictly() {
        let set = validator("SetChargingProfile");
        let limit = |unit, phases| SetLimit {
            pile: "P".into(),
            connector: 2,
            transaction: 41,
            stack_level: 8,
            amps: 13.37,
            unit,
            limit: 0.0,
            phases,
        };
        let a = tx_profile(&limit(Unit::A, 1));
        check(&set, &a);
        assert_eq!(a["csChargingProfiles"]["chargingProfileId"], 18_002);
        assert_eq!(
            a["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"],
            13.3
        );
        let w = tx_profile(&limit(Unit::W, 3));
        check(&set, &w);
        assert_eq!(
            w["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"],
            "W"
        );
        let default = default_profile(0, 8, Unit::A, 6.0, 1);
        check(&set, &default);
        let one = default_profile(2, 8, Unit::W, 6.0, 3);
        check(&set, &one);
        assert_eq!(
            (
                &one["connectorId"],
                &one["csChargingProfiles"]["chargingProfileId"]
            ),
            (&json!(2), &json!(18_000))
        );
        let remote = validator("RemoteStartTransaction");
        let start = json!({"idTag": "CARD", "connectorId": 1,
            "chargingProfile": remote_start_profile(Some(1), 8, Unit::A, 6.0, 1)});
        check(&remote, &start);
        assert_eq!(start["chargingProfile"]["chargingProfileId"], 18_001);
        let anywhere = remote_start_profile(None, 8, Unit::A, 6.0, 1);
        assert_eq!(anywhere["chargingProfileId"], 18_999);
        let clear = validator("ClearChargingProfile");
        let cleared = clear_profiles(2);
        assert_eq!(cleared.len(), 3);
        cleared.iter().for_each(|c| check(&clear, c));
        assert_eq!(cleared[2]["id"], 18_002);
        for (action, payload) in [
            (ocpp::Action::ClearChargingProfile, &cleared[0]),
            (ocpp::Action::SetChargingProfile, &a),
            (ocpp::Action::SetChargingProfile, &w),
            (ocpp::Action::SetChargingProfile, &default),
            (ocpp::Action::RemoteStartTransaction, &start),
        ] {
            ocpp::Request::decode(action, &payload.to_string(), ocpp::Policy::Strict)
                .unwrap_or_else(|e| panic!("{action}: {e}"));
        }
    }
}
