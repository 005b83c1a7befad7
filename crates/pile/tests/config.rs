//! The configuration registry against the vendor FAQ's examples and the OCPP 1.6 rules.

use pile::config::keys as key;
use pile::config::Live;
use std::collections::BTreeMap;

use ocpp::{CallErrorCode, CiString50, ConfigurationStatus as S};
use pile::config::{Configuration, Factory, WebsocketSettings, KEYS};

fn config() -> Configuration {
    Configuration::new(Factory {
        serial_number: "123456789".into(),
        connectors: 1,
        settings: "WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,,,"
            .parse()
            .unwrap(),
        offline_cards: Vec::new(),
    })
}

fn live(which: Live) -> String {
    match which {
        Live::NetState => r#"{"connectivity":"WiFi","wifi-rssi":"-43","4g-rssi":"-1","ccid":"","imsi":"","ip":"192.168.137.199"}"#.into(),
        Live::FirmwarePercent => "0".into(),
    }
}

fn keys(names: &[&str]) -> Vec<CiString50> {
    names.iter().map(|n| CiString50::new(*n).unwrap()).collect()
}

#[test]
fn get_configuration_without_keys_lists_no_vendor_key() {
    let c = config();
    let all = c
        .get_configuration(None, &live)
        .unwrap()
        .configuration_key
        .unwrap();
    let names: Vec<&str> = all.iter().map(|k| k.key.as_str()).collect();
    for standard in [
        "HeartbeatInterval",
        "ConnectionTimeOut",
        "SupportedFeatureProfiles",
        "ChargeProfileMaxStackLevel",
        "NumberOfConnectors",
    ] {
        assert!(names.contains(&standard), "{standard} missing");
    }
    for vendor in KEYS.iter().filter(|k| k.vendor) {
        assert!(!names.contains(&vendor.name), "{} listed", vendor.name);
    }
    // Exactly the declared standard keys, in their order, but the write-only AuthorizationKey.
    let declared: Vec<&str> = KEYS
        .iter()
        .filter(|k| !k.vendor && k.access != pile::config::Access::WriteOnly)
        .map(|k| k.name)
        .collect();
    assert!(!names.contains(&"AuthorizationKey"));
    assert_eq!(names, declared);
    // An empty key list is the same as none.
    assert_eq!(
        c.get_configuration(Some(&[]), &live)
            .unwrap()
            .configuration_key
            .unwrap()
            .len(),
        all.len()
    );
}

#[test]
fn faq_defaults() {
    let c = config();
    let get = |k: &str| c.get(k).unwrap().to_owned();
    assert_eq!(get("HeartbeatInterval"), "900");
    assert_eq!(get("ConnectionTimeOut"), "120");
    assert_eq!(get("MeterValueSampleInterval"), "60");
    assert_eq!(get("ClockAlignedDataInterval"), "1800");
    assert_eq!(get("GetConfigurationMaxKeys"), "100");
    assert_eq!(get("ChargeProfileMaxStackLevel"), "8");
    assert_eq!(get("MaxChargingProfilesInstalled"), "16");
    assert_eq!(get("ResetRetries"), "3");
    assert_eq!(
        get("SupportedFeatureProfiles"),
        "Core,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
    );
    assert_eq!(get("ChargingScheduleMaxPeriods"), "604800");
    assert_eq!(get("MaxEnergyOnInvalidId"), "1000");
    assert_eq!(get("VendorChargeBoxId"), "123456789");
    assert_eq!(get("VendorChargePointName"), "123456789");
}

#[test]
fn faq_3_1_vendor_websocket_settings_by_name() {
    let c = config();
    let r = c
        .get_configuration(Some(&keys(&["VendorWebsocketSettings"])), &live)
        .unwrap();
    let k = &r.configuration_key.unwrap()[0];
    assert_eq!(k.key.as_str(), "VendorWebsocketSettings");
    assert!(!k.readonly);
    assert_eq!(
        k.value.as_deref(),
        Some("WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,,,")
    );
    assert!(r.unknown_key.is_none());
}

#[test]
fn faq_3_14_net_state_is_read_only_json() {
    let c = config();
    let r = c
        .get_configuration(Some(&keys(&["OEM_NetState", "NoSuchKey"])), &live)
        .unwrap();
    let k = &r.configuration_key.unwrap()[0];
    assert!(k.readonly);
    assert_eq!(k.value.as_deref(), Some(live(Live::NetState).as_str()));
    assert_eq!(r.unknown_key.unwrap()[0].as_str(), "NoSuchKey");
}

#[test]
fn faq_change_configuration_examples() {
    let mut c = config();
    let cases: &[(&str, &str, S)] = &[
        ("VendorChargeBoxId", "xxxxxxxxxx", S::Accepted),
        ("VendorChargeBoxId", &"x".repeat(64), S::Rejected),
        ("VendorChargePointName", "xxxxxxxxxx", S::Accepted),
        ("VendorChargePointName", &"x".repeat(64), S::Rejected),
        ("VendorChargePointName", &"x".repeat(63), S::Accepted),
        (
            "VendorWebsocketSettings",
            "WS,cpam3.x-cheng.net,443,/ocpp/,socpp1.6,,,",
            S::Accepted,
        ),
        (
            "VendorWebsocketSettings",
            "WS,cpam3.x-cheng.net,80,/ocpp/,ocpp1.6,,,",
            S::Accepted,
        ),
        (
            "VendorWebsocketSettings",
            "WS,cpam3.x-cheng.net,80,/ocpp/,http,,,",
            S::Rejected,
        ),
        ("VendorDirectWorkMode", "false", S::Accepted),
        ("LocalAuthorizeOffline", "false", S::Accepted),
        ("LocalPreAuthorize", "false", S::Accepted),
        ("AuthorizationCacheEnabled", "false", S::Accepted),
        ("AllowOfflineTxForUnknownId", "false", S::Accepted),
        ("DBGEnableInsight", "8.209.68.26,8883", S::Accepted),
        ("DBGEnableInsight", "", S::Accepted),
        ("OEM_FaultMask", "256", S::Accepted),
        ("OEM_FaultMask", "768", S::Accepted),
        ("OEM_FaultMask", "4", S::Rejected),
        ("OEM_FunctionMask", "0x1", S::Accepted),
        ("OEM_FunctionMask", "0x10", S::Rejected),
        ("HeartbeatInterval", "59", S::Rejected),
        ("HeartbeatInterval", "60", S::Accepted),
        ("HeartbeatInterval", "86400", S::Accepted),
        ("HeartbeatInterval", "86401", S::Rejected),
        ("HeartbeatInterval", "ten", S::Rejected),
        (
            "MeterValuesSampledData",
            "Energy.Active.Import.Register,Voltage.L1,Current.Import.L2",
            S::Accepted,
        ),
        (
            "MeterValuesSampledData",
            "Energy.Active.Import.Register,Speed",
            S::Rejected,
        ),
        (
            "MeterValuesSampledData",
            &vec!["Voltage"; 21].join(","),
            S::Rejected,
        ),
        ("StopTxnSampledData", "", S::Accepted),
        ("WebSocketPingInterval", "-1", S::Rejected),
        ("WebSocketPingInterval", "0", S::Accepted),
        ("ChargeProfileMaxStackLevel", "9", S::Rejected),
        ("OEM_NetState", "{}", S::Rejected),
        ("GetFirmwareUpgradePercentages", "50", S::Rejected),
        ("NoSuchKey", "1", S::NotSupported),
    ];
    for (key, value, expected) in cases {
        let change = c.change(key, value);
        assert_eq!(
            &change.status, expected,
            "{key} = {value:?}: {:?}",
            change.reason
        );
    }
    assert_eq!(
        c.get("OEM_FunctionMask"),
        Some("1"),
        "masks are stored in decimal"
    );
    assert_eq!(
        c.get("VendorWebsocketSettings"),
        Some("WS,cpam3.x-cheng.net,80,/ocpp/,ocpp1.6,,,")
    );
}

#[test]
fn names_restore_their_default_when_emptied_and_keys_ignore_case() {
    let mut c = config();
    assert_eq!(
        c.change("VendorChargePointName", "PILE-A").changed,
        Some("VendorChargePointName")
    );
    assert_eq!(c.identity(), "PILE-A");
    assert_eq!(c.change("vendorchargepointname", "").status, S::Accepted);
    assert_eq!(
        c.identity(),
        "123456789",
        "empty restores the serial number"
    );
    assert_eq!(c.change("heartbeatinterval", "300").status, S::Accepted);
    assert_eq!(c.int(key::HEARTBEAT_INTERVAL), 300);
    assert_eq!(
        c.change("HeartbeatInterval", "300").changed,
        None,
        "an unchanged value is no change"
    );
}

#[test]
fn websocket_settings_accept_the_short_form_and_report_the_canonical_one() {
    let mut c = config();
    assert_eq!(
        c.change(
            "VendorWebsocketSettings",
            "WS,10.0.0.5,9000,/ocpp/,ocpp1.6,CP1,secret"
        )
        .status,
        S::Accepted
    );
    let r = c
        .get_configuration(Some(&keys(&["VendorWebsocketSettings"])), &live)
        .unwrap();
    assert_eq!(
        r.configuration_key.unwrap()[0].value.as_deref(),
        Some("WS,10.0.0.5,9000,/ocpp/,ocpp1.6,CP1,secret,")
    );
    let s: WebsocketSettings = c.websocket_settings();
    assert_eq!(s.base_url(), "ws://10.0.0.5:9000/ocpp/");
}

#[test]
fn too_many_keys_is_an_occurrence_violation() {
    let c = config();
    let names: Vec<String> = (0..101).map(|i| format!("K{i}")).collect();
    let many: Vec<CiString50> = names
        .iter()
        .map(|n| CiString50::new(n.as_str()).unwrap())
        .collect();
    let err = c.get_configuration(Some(&many), &live).unwrap_err();
    assert_eq!(err.code, CallErrorCode::OccurenceConstraintViolation);
    assert!(c.get_configuration(Some(&many[..100]), &live).is_ok());
}

#[test]
fn restore_keeps_valid_writable_values_only() {
    let mut c = config();
    c.change("HeartbeatInterval", "120");
    c.change("OEM_FaultMask", "0x300");
    let mut saved = c.snapshot();
    assert_eq!(saved.get("OEM_FaultMask").map(String::as_str), Some("768"));
    assert!(
        !saved.contains_key("ChargeProfileMaxStackLevel"),
        "read-only keys are not persisted"
    );
    saved.insert("ChargeProfileMaxStackLevel".into(), "99".into());
    saved.insert("ConnectionTimeOut".into(), "-5".into());
    saved.insert("Bogus".into(), "1".into());
    let restored = Configuration::restore(c.factory().clone(), &saved);
    assert_eq!(restored.int(key::HEARTBEAT_INTERVAL), 120);
    assert_eq!(restored.mask(key::OEM_FAULT_MASK), 768);
    assert_eq!(restored.int(key::CHARGE_PROFILE_MAX_STACK_LEVEL), 8);
    assert_eq!(restored.int(key::CONNECTION_TIME_OUT), 120);
    let _: BTreeMap<String, String> = restored.snapshot();
}

#[test]
fn a_write_only_keys_value_is_redacted_from_logged_frames() {
    let secret = r#"[2,"m1","ChangeConfiguration",{"key":"authorizationKEY","value":"00112233445566778899aabbccddeeff"}]"#;
    let logged = pile::config::redacted(secret);
    assert!(
        !logged.contains("00112233445566778899aabbccddeeff"),
        "{logged}"
    );
    let v: serde_json::Value = serde_json::from_str(&logged).unwrap();
    assert_eq!(v[3]["value"], "<redacted>");
    assert_eq!(v[3]["key"], "authorizationKEY");
    for plain in [
        r#"[2,"m2","ChangeConfiguration",{"key":"HeartbeatInterval","value":"60"}]"#,
        r#"[3,"m3",{"unknownKey":["AuthorizationKey"]}]"#,
        "AuthorizationKey, not JSON",
    ] {
        assert_eq!(pile::config::redacted(plain), plain);
    }
}
