//! Date-times as people and scripts write them ([`Timestamp::from_rfc3339`], decoding under
//! [`Policy::Input`]): any RFC 3339 form, normalised to UTC milliseconds; the wire's strict
//! decoding is unchanged.

use ocpp::{Policy, Request, Timestamp};

/// (given, the OCPP-J form it becomes; None: refused).
const TABLE: &[(&str, Option<&str>)] = &[
    ("2026-12-03T18:54:28.976Z", Some("2026-12-03T18:54:28.976Z")),
    ("2026-12-03T18:54:28Z", Some("2026-12-03T18:54:28.000Z")),
    ("2026-12-03T18:54:28.97Z", Some("2026-12-03T18:54:28.970Z")),
    (
        "2026-12-03T18:54:28.976683Z",
        Some("2026-12-03T18:54:28.976Z"),
    ),
    (
        "2026-12-03T18:54:28.976683+00:00",
        Some("2026-12-03T18:54:28.976Z"),
    ),
    (
        "2026-12-03T18:54:28.999999999Z",
        Some("2026-12-03T18:54:28.999Z"),
    ),
    (
        "2026-12-03T18:54:28.976683-00:00",
        Some("2026-12-03T18:54:28.976Z"),
    ),
    (
        "2026-12-03T20:54:28.5+02:00",
        Some("2026-12-03T18:54:28.500Z"),
    ),
    (
        "2026-12-03T13:24:28-05:30",
        Some("2026-12-03T18:54:28.000Z"),
    ),
    (
        "2026-12-04T00:24:28+05:30",
        Some("2026-12-03T18:54:28.000Z"),
    ),
    (
        "2027-01-01T00:30:00+01:00",
        Some("2026-12-31T23:30:00.000Z"),
    ),
    ("2026-12-03t18:54:28z", Some("2026-12-03T18:54:28.000Z")),
    ("0000-01-01T00:00:00Z", Some("0000-01-01T00:00:00.000Z")),
    (
        "9999-12-31T23:59:59.999999Z",
        Some("9999-12-31T23:59:59.999Z"),
    ),
    // Not RFC 3339, or outside the years 0000..=9999 once in UTC.
    ("2026-12-03T18:54:28", None),
    ("2026-12-03T18:54:28.976683", None),
    ("2026-12-03T18:54Z", None),
    ("2026-12-03", None),
    ("18:54:28Z", None),
    ("2026-12-03T18:54:28.Z", None),
    ("2026-12-03T18:54:28+0100", None),
    ("2026-12-03T18:54:28+01", None),
    ("2026-12-03T18:54:28 UTC", None),
    ("2026-02-30T18:54:28Z", None),
    ("2026-12-03T24:00:01Z", None),
    ("2026-12-03T18:54:28+24:00", None),
    ("9999-12-31T23:59:59-01:00", None),
    ("0000-01-01T00:30:00+01:00", None),
    ("1764788068976", None),
    ("", None),
];

#[test]
fn any_rfc_3339_date_time_is_taken_as_utc_milliseconds() {
    for (given, expected) in TABLE {
        let got = Timestamp::from_rfc3339(given).map(|t| t.to_string()).ok();
        assert_eq!(got.as_deref(), *expected, "{given:?}");
    }
}

fn reserve_now(expiry: &str) -> String {
    serde_json::json!({"connectorId": 1, "expiryDate": expiry, "idTag": "T", "reservationId": 1})
        .to_string()
}

#[test]
fn decoding_under_input_takes_the_same_forms_and_encodes_ocpp_js() {
    for (given, expected) in TABLE {
        let decoded = Request::decode(ocpp::Action::ReserveNow, &reserve_now(given), Policy::Input);
        match (decoded, expected) {
            (Ok(d), Some(expected)) => {
                assert!(d.deviations.is_empty(), "{given:?}: {:?}", d.deviations);
                let json: serde_json::Value = serde_json::from_str(&d.value.to_json()).unwrap();
                assert_eq!(json["expiryDate"], *expected, "{given:?}");
            }
            (Err(e), None) => assert!(
                e.description.contains("an RFC 3339 date-time"),
                "{given:?}: {}",
                e.description
            ),
            (Ok(d), None) => panic!("{given:?} taken: {:?}", d.value),
            (Err(e), Some(_)) => panic!("{given:?} refused: {}", e.description),
        }
    }
}

#[test]
fn the_wire_stays_strict() {
    for given in [
        "2026-12-03T18:54:28.976683Z",
        "2026-12-03T18:54:28.976+00:00",
        "2026-12-03T18:54:28",
    ] {
        assert!(
            Request::decode(
                ocpp::Action::ReserveNow,
                &reserve_now(given),
                Policy::Strict
            )
            .is_err(),
            "{given:?}"
        );
        assert!(given.parse::<Timestamp>().is_err(), "{given:?}");
    }
    let ok = Request::decode(
        ocpp::Action::ReserveNow,
        &reserve_now("2026-12-03T18:54:28.976Z"),
        Policy::Strict,
    );
    assert!(ok.is_ok());
}
