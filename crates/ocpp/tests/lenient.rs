//! Strict and lenient decoding, and the exact encoding.

use ocpp::{
    decode, encode, ChargingRate, CiString20, DeviationKind, MeterValue, MeterValuesRequest,
    Policy, ResetRequest, ResetType, SampledValue, StatusNotificationRequest,
    StopTransactionRequest, Timestamp, TransactionData, UnitOfMeasure,
};

#[test]
fn timestamps_encode_with_milliseconds_and_z() {
    let t = Timestamp::from_millis(1_795_000_000_123).unwrap();
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        "\"2026-11-18T11:06:40.123Z\""
    );
    let t = Timestamp::from_millis(1_795_000_000_000).unwrap();
    assert_eq!(t.to_string(), "2026-11-18T11:06:40.000Z");
}

#[test]
fn absent_optionals_are_omitted_never_null() {
    let req = StatusNotificationRequest {
        connector_id: 1,
        error_code: ocpp::ChargePointErrorCode::NoError,
        info: None,
        status: ocpp::ChargePointStatus::Available,
        timestamp: None,
        vendor_id: None,
        vendor_error_code: None,
    };
    assert_eq!(
        encode(&req),
        r#"{"connectorId":1,"errorCode":"NoError","status":"Available"}"#
    );
}

#[test]
fn charging_rates_are_tenths() {
    assert_eq!(
        serde_json::to_string(&ChargingRate::from_tenths(161)).unwrap(),
        "16.1"
    );
    assert_eq!(
        serde_json::to_string(&ChargingRate::from_tenths(3)).unwrap(),
        "0.3"
    );
    assert_eq!(
        serde_json::to_string(&ChargingRate::from_tenths(320)).unwrap(),
        "32.0"
    );
}

const STATUS: &str =
    r#"{"connectorId":1,"errorCode":"NoError","status":"Available","timestamp":"TS"}"#;

fn status_with(ts: &str) -> String {
    STATUS.replace("TS", ts)
}

#[test]
fn strict_timestamps() {
    for ok in [
        "2026-01-01T10:00:00Z",
        "2026-01-01T10:00:00.1Z",
        "2026-01-01T10:00:00.12Z",
        "2026-01-01T10:00:00.123Z",
    ] {
        let d = decode::<StatusNotificationRequest>(&status_with(ok), Policy::Strict).unwrap();
        assert!(d.deviations.is_empty());
    }
    for bad in [
        "2026-01-01T10:00:00.1234Z",
        "2026-01-01T12:00:00+02:00",
        "2026-01-01T10:00:00",
        "2026-01-01 10:00:00Z",
        "today",
    ] {
        let e = decode::<StatusNotificationRequest>(&status_with(bad), Policy::Strict).unwrap_err();
        assert_eq!(
            e.code,
            ocpp::CallErrorCode::PropertyConstraintViolation,
            "{bad}"
        );
    }
}

#[test]
fn lenient_timestamps_are_normalised_and_reported() {
    for (input, utc) in [
        (
            "2026-01-01T12:00:00.123456+02:00",
            "2026-01-01T10:00:00.123Z",
        ),
        ("2026-01-01T10:00:00.9999999Z", "2026-01-01T10:00:00.999Z"),
        ("2026-01-01T10:00:00", "2026-01-01T10:00:00.000Z"),
    ] {
        let d = decode::<StatusNotificationRequest>(&status_with(input), Policy::Lenient).unwrap();
        assert_eq!(d.value.timestamp.unwrap().to_string(), utc);
        assert_eq!(d.deviations.len(), 1, "{input}");
        assert_eq!(d.deviations[0].kind, DeviationKind::TimestampFormat);
    }
    assert!(decode::<StatusNotificationRequest>(&status_with("today"), Policy::Lenient).is_err());
}

#[test]
fn lenient_strings_and_enums() {
    let json = r#"{"connectorId":1,"errorCode":"NoError","status":"Charging","info":"INFO","vendorErrorCode":"0xC000"}"#.replace("INFO", &"i".repeat(60));
    assert!(decode::<StatusNotificationRequest>(&json, Policy::Strict).is_err());
    let d = decode::<StatusNotificationRequest>(&json, Policy::Lenient).unwrap();
    assert_eq!(d.value.info.unwrap().len(), 60);
    assert_eq!(d.deviations[0].kind, DeviationKind::StringTooLong);

    let json = r#"{"type":"Warm"}"#;
    assert_eq!(
        decode::<ResetRequest>(json, Policy::Strict)
            .unwrap_err()
            .code,
        ocpp::CallErrorCode::PropertyConstraintViolation
    );
    let d = decode::<ResetRequest>(json, Policy::Lenient).unwrap();
    assert_eq!(d.value.kind, ResetType::Unrecognized("Warm".into()));
    assert_eq!(d.deviations[0].kind, DeviationKind::UnknownEnumValue);
    // Kept verbatim when encoded again.
    assert_eq!(encode(&d.value), json);
}

fn meter(unit: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-01-01T10:00:00.000Z","sampledValue":[{{"value":"21.5","measurand":"Temperature","unit":"{unit}"}}]}}"#
    )
}

#[test]
fn celsius_spellings() {
    // MeterValues: both spellings are in the schema; we send "Celsius".
    for unit in ["Celsius", "Celcius"] {
        let json = format!(r#"{{"connectorId":1,"meterValue":[{}]}}"#, meter(unit));
        let d = decode::<MeterValuesRequest>(&json, Policy::Strict).unwrap();
        assert!(d.deviations.is_empty());
        assert_eq!(
            d.value.meter_value[0].sampled_value[0].unit,
            Some(UnitOfMeasure::Celsius)
        );
        assert!(encode(&d.value).contains("\"unit\":\"Celsius\""));
    }
    // StopTransaction: only "Celcius" is in the schema; we send it; "Celsius" is a deviation.
    let stop = |unit: &str| {
        format!(
            r#"{{"meterStop":10,"timestamp":"2026-01-01T10:00:00.000Z","transactionId":5,"transactionData":[{}]}}"#,
            meter(unit)
        )
    };
    let d = decode::<StopTransactionRequest>(&stop("Celcius"), Policy::Strict).unwrap();
    assert!(encode(&d.value).contains("\"unit\":\"Celcius\""));
    assert!(decode::<StopTransactionRequest>(&stop("Celsius"), Policy::Strict).is_err());
    let d = decode::<StopTransactionRequest>(&stop("Celsius"), Policy::Lenient).unwrap();
    assert_eq!(d.deviations[0].kind, DeviationKind::CelsiusSpelling);
    assert!(encode(&d.value).contains("\"unit\":\"Celcius\""));

    // Built in code: the same MeterValue is spelled per message.
    let mv = MeterValue {
        timestamp: Timestamp::from_millis(0).unwrap(),
        sampled_value: vec![SampledValue {
            value: "20".into(),
            context: None,
            format: None,
            measurand: None,
            phase: None,
            location: None,
            unit: Some(UnitOfMeasure::Celsius),
        }],
    };
    let req = StopTransactionRequest {
        id_tag: Some(CiString20::new("TAG").unwrap()),
        meter_stop: 1,
        timestamp: Timestamp::from_millis(0).unwrap(),
        transaction_id: 1,
        reason: None,
        transaction_data: Some(vec![TransactionData(mv.clone())]),
    };
    assert!(encode(&req).contains("Celcius"));
    assert!(encode(&mv).contains("Celsius"));
}

#[test]
fn lenient_decimals_round() {
    let json = r#"{"connectorId":1,"duration":60}"#;
    assert!(decode::<ocpp::GetCompositeScheduleRequest>(json, Policy::Strict).is_ok());
    let p = r#"{"status":"Accepted","chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":[{"startPeriod":0,"limit":10.04}]}}"#;
    assert!(decode::<ocpp::GetCompositeScheduleResponse>(p, Policy::Strict).is_err());
    let d = decode::<ocpp::GetCompositeScheduleResponse>(p, Policy::Lenient).unwrap();
    assert_eq!(
        d.value.charging_schedule.unwrap().charging_schedule_period[0].limit,
        ChargingRate::from_tenths(100)
    );
    assert_eq!(d.deviations[0].kind, DeviationKind::DecimalPrecision);
}
