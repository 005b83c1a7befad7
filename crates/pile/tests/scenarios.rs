//! Scenarios on the sans-I/O core with a virtual clock: frames on the wire, durable state,
//! connections, hours of simulated time in milliseconds.

mod common;

use common::harness::{secs, Pile, SETTINGS};
use pile::{Durable, Input, Options, Output};
use serde_json::json;

#[test]
fn start_persists_and_connects_with_the_identity_in_the_url() {
    let p = Pile::new(1);
    assert_eq!(p.log[0], Output::Persist);
    assert_eq!(p.cp.durable().boots(), 1);
    // DBGEnableInsight is empty: no log stream.
    assert_eq!(p.log[1], Output::Insight(None));
    match &p.log[2] {
        Output::Connect(t) => {
            assert_eq!(t.url, "ws://central.example:9000/ocpp/SN0001");
            assert_eq!(t.basic, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn accepted_boot_reports_every_connector_and_heartbeats_on_idle() {
    let mut p = Pile::new(2);
    let out = p.input(Input::Connected);
    let frames = Pile::frames(&out);
    assert_eq!(frames.len(), 1, "only the BootNotification goes out first");
    assert_eq!(frames[0][3]["chargePointSerialNumber"], "SN0001");
    assert_eq!(frames[0][3]["chargePointModel"], "M3G3");
    assert!(
        frames[0][3].get("iccid").is_none(),
        "no 4G details without 4G"
    );

    let statuses = p.accept(&frames[0], 300);
    let connectors: Vec<i64> = statuses
        .iter()
        .filter(|f| f[2] == "StatusNotification")
        .map(|f| f[3]["connectorId"].as_i64().unwrap())
        .collect();
    assert_eq!(
        connectors,
        vec![0, 1, 2],
        "ERR 3.22: connector 0 and every connector"
    );
    assert!(statuses
        .iter()
        .filter(|f| f[2] == "StatusNotification")
        .all(|f| f[3]["status"] == "Available"));
    // The start is a security event, sent once accepted.
    let events: Vec<_> = statuses
        .iter()
        .filter(|f| f[2] == "SecurityEventNotification")
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0][3]["type"], "StartupOfTheDevice");
    assert_eq!(
        p.cp.config().int(pile::config::keys::HEARTBEAT_INTERVAL),
        300,
        "the central's interval is adopted"
    );
    assert!(p.log.contains(&Output::Persist));
    assert_eq!(p.cp.durable().config()["HeartbeatInterval"], "300");

    // 299 s of silence: nothing. At 300 s: a Heartbeat.
    assert!(Pile::frames(&p.advance(secs(299))).is_empty());
    let hb = Pile::frames(&p.advance(secs(1)));
    assert_eq!(hb.len(), 1);
    assert_eq!(hb[0][2], "Heartbeat");
    // The central moves the clock by 55 minutes: a SettingSystemTime security event.
    let out = p.reply(&hb[0], json!({"currentTime":"2026-11-24T13:00:00.000Z"}));
    let event = Pile::frames(&out);
    assert_eq!(event.len(), 1);
    assert_eq!(event[0][2], "SecurityEventNotification");
    assert_eq!(event[0][3]["type"], "SettingSystemTime");
    p.reply(&event[0], json!({}));
    // A day of simulated time: one heartbeat every 300 s (the clock now moves by 5 minutes
    // at most: no event).
    let mut count = 0;
    for _ in 0..288 {
        for f in Pile::frames(&p.advance(secs(300))) {
            assert_eq!(f[2], "Heartbeat");
            count += 1;
            p.reply(&f, json!({"currentTime":"2026-11-24T13:00:00.000Z"}));
        }
    }
    assert_eq!(count, 288);
}

#[test]
fn pending_and_rejected_boots_are_retried_after_the_interval() {
    let mut p = Pile::new(1);
    let boot = Pile::frames(&p.input(Input::Connected))[0].clone();
    assert!(Pile::frames(&p.reply(
        &boot,
        json!({"status":"Pending","currentTime":"2026-11-24T12:00:00.000Z","interval":30})
    ))
    .is_empty());
    // While pending the central may configure the pile.
    let answer =
        Pile::frames(&p.central_calls("GetConfiguration", json!({"key":["HeartbeatInterval"]})));
    assert_eq!(answer[0][2]["configurationKey"][0]["value"], "900");
    assert!(Pile::frames(&p.advance(secs(29))).is_empty());
    let again = Pile::frames(&p.advance(secs(1)));
    assert_eq!(again[0][2], "BootNotification");
    assert!(Pile::frames(&p.reply(
        &again[0],
        json!({"status":"Rejected","currentTime":"2026-11-24T12:00:00.000Z","interval":0})
    ))
    .is_empty());
    assert!(!p.cp.is_accepted());
    assert_eq!(
        Pile::frames(&p.advance(secs(60)))[0][2],
        "BootNotification",
        "60 s when the central gives no interval"
    );
}

#[test]
fn an_accepted_change_is_durable_before_the_answer_leaves() {
    let mut p = Pile::new(1);
    p.boot(900);
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"MeterValueSampleInterval","value":"30"}),
    );
    match (&out[0], &out[1]) {
        (Output::Persist, Output::Send(answer)) => {
            assert_eq!(p.cp.durable().config()["MeterValueSampleInterval"], "30");
            assert_eq!(answer, r#"[3,"cs-1",{"status":"Accepted"}]"#);
        }
        other => panic!("{other:?}"),
    }
    // A refused change persists nothing.
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"HeartbeatInterval","value":"10"}),
    );
    assert_eq!(
        out,
        vec![Output::Send(r#"[3,"cs-1",{"status":"Rejected"}]"#.into())]
    );
    let out = p.central_calls("ChangeConfiguration", json!({"key":"Unknown","value":"10"}));
    assert_eq!(
        out,
        vec![Output::Send(
            r#"[3,"cs-1",{"status":"NotSupported"}]"#.into()
        )]
    );
}

#[test]
fn a_new_name_reconnects_at_the_new_url_after_the_answer() {
    let mut p = Pile::new(1);
    p.boot(900);
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"VendorChargePointName","value":"PILE-7"}),
    );
    assert_eq!(out[0], Output::Persist);
    assert_eq!(p.cp.durable().config()["VendorChargePointName"], "PILE-7");
    assert_eq!(
        out[1],
        Output::Send(r#"[3,"cs-1",{"status":"Accepted"}]"#.into())
    );
    assert!(
        matches!(&out[2], Output::Connect(t) if t.url == "ws://central.example:9000/ocpp/PILE-7")
    );
    // The new identity boots anew, and still reports the original serial number.
    let boot = Pile::frames(&p.input(Input::Connected));
    assert_eq!(boot[0][2], "BootNotification");
    assert_eq!(boot[0][3]["chargePointSerialNumber"], "SN0001");

    // With UrlHasServerToken the URL is the configured one alone. The boot is still waiting
    // for its answer: the pile answers, and moves once the central has answered it too (a
    // central that handles one frame at a time would otherwise find the connection closed
    // while it answers, and never read the ChangeConfiguration's answer).
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"UrlHasServerToken","value":"true"}),
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Connect(_))),
        "{out:?}"
    );
    assert!(out.contains(&Output::Send(r#"[3,"cs-1",{"status":"Accepted"}]"#.into())));
    let out = p.reply(
        &boot[0],
        json!({"status":"Accepted","currentTime":"2026-11-24T12:00:00.000Z","interval":900}),
    );
    assert!(
        matches!(out.last(), Some(Output::Connect(t)) if t.url == "ws://central.example:9000/ocpp/"),
        "{out:?}"
    );
    // The old server's acceptance does not count: the new one gets a BootNotification.
    let boot = Pile::frames(&p.input(Input::Connected));
    assert_eq!(boot[0][2], "BootNotification");

    // A CALL that is never answered holds the move back two seconds at the most.
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"UrlHasServerToken","value":"false"}),
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Connect(_))),
        "{out:?}"
    );
    assert!(p.advance(std::time::Duration::from_millis(1900)).is_empty());
    let out = p.advance(std::time::Duration::from_millis(100));
    assert!(
        matches!(out.last(), Some(Output::Connect(t)) if t.url == "ws://central.example:9000/ocpp/PILE-7"),
        "{out:?}"
    );
}

#[test]
fn new_websocket_settings_reconnect_and_bad_ones_are_rejected() {
    let mut p = Pile::new(1);
    p.boot(900);
    let out = p.central_calls("ChangeConfiguration", json!({"key":"VendorWebsocketSettings","value":"WS,cpam3.x-cheng.net,80,/ocpp/,ocpp1.6,,,"}));
    assert!(
        matches!(out.last(), Some(Output::Connect(t)) if t.url == "ws://cpam3.x-cheng.net:80/ocpp/SN0001")
    );
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"VendorWebsocketSettings","value":"WS,cpam3.x-cheng.net,80,/ocpp/"}),
    );
    assert_eq!(
        out,
        vec![Output::Send(r#"[3,"cs-1",{"status":"Rejected"}]"#.into())]
    );
    // Credentials in the settings become HTTP Basic credentials; an empty user means the identity.
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"VendorWebsocketSettings","value":"WS,10.1.1.1,443,/ocpp/,socpp1.6,,s3cret,"}),
    );
    match out.last() {
        Some(Output::Connect(t)) => {
            assert_eq!(t.url, "wss://10.1.1.1:443/ocpp/SN0001");
            assert_eq!(t.basic, Some(("SN0001".into(), "s3cret".into())));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unreachable_settings_fall_back_to_the_last_that_worked() {
    let mut p = Pile::new(1);
    p.boot(900);
    p.central_calls(
        "ChangeConfiguration",
        json!({"key":"VendorWebsocketSettings","value":"WS,unreachable.example,9,/x/,ocpp1.6,,,"}),
    );
    // The new server never answers: the pile retries there with growing delays.
    let mut connects = Vec::new();
    while p.now < secs(250) {
        p.input(Input::Disconnected);
        let next = p.cp.next_deadline().unwrap();
        for o in p.advance(next - p.now) {
            if let Output::Connect(t) = o {
                connects.push(t.url);
            }
        }
    }
    assert!(connects.len() >= 5, "{connects:?}");
    assert!(
        connects
            .iter()
            .all(|url| url.contains("unreachable.example")),
        "{connects:?}"
    );
    // Five minutes after the change: back to the settings that worked, durably.
    let out = p.advance(secs(300));
    assert!(out.contains(&Output::Persist));
    // Durably: a restart from the durable state reads them (they are the factory's, which the
    // state records as no change).
    let restarted = Pile::with(1, p.cp.durable().clone(), Options::default());
    assert_eq!(
        restarted.cp.config().get("VendorWebsocketSettings"),
        Some(SETTINGS)
    );
    assert!(
        out.iter().any(
            |o| matches!(o, Output::Connect(t) if t.url == "ws://central.example:9000/ocpp/SN0001")
        ),
        "{out:?}"
    );
    assert_eq!(p.cp.config().get("VendorWebsocketSettings"), Some(SETTINGS));
}

#[test]
fn fallback_can_be_switched_off() {
    let mut p = Pile::with(
        1,
        Durable::default(),
        Options {
            settings_fallback: None,
            ..Options::default()
        },
    );
    p.boot(900);
    p.central_calls(
        "ChangeConfiguration",
        json!({"key":"VendorWebsocketSettings","value":"WS,unreachable.example,9,/x/,ocpp1.6,,,"}),
    );
    p.input(Input::Disconnected);
    let out = p.advance(secs(3600));
    assert!(!out.contains(&Output::Persist));
    assert!(p.cp.target().url.contains("unreachable.example"));
}

#[test]
fn reconnection_backs_off_exponentially_with_jitter() {
    let mut p = Pile::new(1);
    let mut delays = Vec::new();
    for _ in 0..10 {
        p.input(Input::Disconnected);
        let start = p.now;
        let deadline = p.cp.next_deadline().unwrap();
        let out = p.advance(deadline - start);
        assert!(matches!(out.last(), Some(Output::Connect(_))));
        delays.push((p.now - start).as_millis() as u64);
    }
    let base = [
        2_000u64, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000,
    ];
    for (d, b) in delays.iter().zip(base) {
        assert!(*d >= b && *d <= b + b / 4, "{delays:?}");
    }
    // A successful connection resets the backoff.
    p.input(Input::Connected);
    p.input(Input::Disconnected);
    assert!(p.cp.next_deadline().unwrap() - p.now <= secs(3));
}

#[test]
fn faq_3_9_trigger_boot_notification_answers_first() {
    let mut p = Pile::new(1);
    p.boot(900);
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"connectorId":0,"requestedMessage":"BootNotification"}),
    ));
    assert_eq!(out[0], json!([3, "cs-1", {"status":"Accepted"}]));
    assert_eq!(out[1][2], "BootNotification");
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"connectorId":2,"requestedMessage":"StatusNotification"}),
    ));
    assert_eq!(
        out,
        vec![json!([3, "cs-1", {"status":"Rejected"}])],
        "connector 2 does not exist"
    );
}

#[test]
fn trigger_status_and_heartbeat() {
    let mut p = Pile::new(2);
    p.boot(900);
    let out =
        Pile::frames(&p.central_calls("TriggerMessage", json!({"requestedMessage":"Heartbeat"})));
    assert_eq!(out[0][2]["status"], "Accepted");
    assert_eq!(out[1][2], "Heartbeat");
    p.reply(&out[1], json!({"currentTime":"2026-11-24T12:00:00.000Z"}));
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage":"StatusNotification","connectorId":2}),
    ));
    assert_eq!(out[1][3]["connectorId"], 2);
}

#[test]
fn data_transfer_knows_its_vendor() {
    let mut p = Pile::new(1);
    p.boot(900);
    let out = Pile::frames(&p.central_calls("DataTransfer", json!({"vendorId":"someone"})));
    assert_eq!(out[0][2], json!({"status":"UnknownVendorId"}));
    let out = Pile::frames(
        &p.central_calls("DataTransfer", json!({"vendorId":"OCPILE","messageId":"x"})),
    );
    assert_eq!(out[0][2], json!({"status":"UnknownMessageId"}));
}

#[test]
fn change_availability_is_persisted_and_reported() {
    let mut p = Pile::new(2);
    p.boot(900);
    let out = p.central_calls(
        "ChangeAvailability",
        json!({"connectorId":1,"type":"Inoperative"}),
    );
    assert_eq!(out[0], Output::Persist);
    assert!(p.cp.durable().inoperative().contains(&1));
    let frames = Pile::frames(&out);
    assert_eq!(frames[0][2]["status"], "Accepted");
    assert_eq!(frames[1][3]["connectorId"], 1);
    assert_eq!(frames[1][3]["status"], "Unavailable");
    let out = Pile::frames(&p.central_calls(
        "ChangeAvailability",
        json!({"connectorId":3,"type":"Inoperative"}),
    ));
    assert_eq!(out[0][2]["status"], "Rejected");

    // Survives a restart.
    let durable = p.cp.durable().clone();
    let mut again = Pile::with(2, durable, Options::default());
    assert_eq!(again.cp.status(1), ocpp::ChargePointStatus::Unavailable);
    let statuses = again.boot(900);
    assert!(statuses
        .iter()
        .any(|f| f[3]["connectorId"] == 1 && f[3]["status"] == "Unavailable"));
}

#[test]
fn faq_3_14_net_state_in_the_faq_shape() {
    let mut p = Pile::new(1);
    p.boot(900);
    let wifi = pile::NetState {
        connectivity: "WiFi".into(),
        wifi_rssi: -43,
        lte_rssi: -1,
        iccid: String::new(),
        imsi: String::new(),
        ip: "192.168.137.199".into(),
    };
    p.input(Input::Network(&wifi));
    let out = Pile::frames(&p.central_calls("GetConfiguration", json!({"key":["OEM_NetState"]})));
    assert_eq!(
        out[0],
        json!([3, "cs-1", {"configurationKey":[{"key":"OEM_NetState","readonly":true,"value":"{\"connectivity\":\"WiFi\",\"wifi-rssi\":\"-43\",\"4g-rssi\":\"-1\",\"ccid\":\"\",\"imsi\":\"\",\"ip\":\"192.168.137.199\"}"}]}])
    );
}

#[test]
fn faq_3_6_faults_give_faulted_with_the_vendor_error_code_sum() {
    let mut p = Pile::new(1);
    p.boot(900);
    let active = common::harness::faults(&["relay_sticking", "cp_error"]);
    let out = p.input(Input::Faults(&active));
    let reports = p.statuses(out);
    assert_eq!(reports.len(), 2, "connector 0 and connector 1: {reports:?}");
    for r in &reports {
        assert_eq!(r["status"], "Faulted");
        assert_eq!(r["errorCode"], "PowerSwitchFailure");
        assert_eq!(r["vendorErrorCode"], "0xC000");
        assert_eq!(r["vendorId"], "ocpile");
        assert_eq!(r["info"], "cp_error,relay_sticking");
    }
    // Cleared: back to the previous state, without error.
    let out = p.input(Input::Faults(&common::harness::faults(&[])));
    let reports = p.statuses(out);
    assert_eq!(reports.len(), 2);
    for r in &reports {
        assert_eq!(r["status"], "Available");
        assert_eq!(r["errorCode"], "NoError");
        assert!(r.get("vendorErrorCode").is_none());
    }
}

#[test]
fn faq_3_12_masked_faults_are_not_detected() {
    let mut p = Pile::new(1);
    p.boot(900);
    p.central_calls(
        "ChangeConfiguration",
        json!({"key":"OEM_FaultMask","value":"768"}),
    );
    let out = p.input(Input::Faults(&common::harness::faults(&[
        "ground",
        "relay_sticking",
    ])));
    assert!(
        p.statuses(out).is_empty(),
        "ground and relay detection are off"
    );
    // Switching detection back on reports the fault at once.
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"OEM_FaultMask","value":"0"}),
    );
    let reports = p.statuses(out);
    assert_eq!(reports[0]["status"], "Faulted");
    assert_eq!(reports[0]["errorCode"], "GroundFailure");
    assert_eq!(reports[0]["vendorErrorCode"], "0x8000");
}

#[test]
fn faq_3_13_cp_diode_warns_unless_function_bit_2() {
    let mut p = Pile::new(1);
    p.boot(900);
    let out = p.input(Input::Faults(&common::harness::faults(&["cp_diode"])));
    let reports = p.statuses(out);
    assert_eq!(reports[0]["status"], "Available", "a warning, not a fault");
    assert_eq!(reports[0]["errorCode"], "OtherError");
    assert_eq!(reports[0]["vendorErrorCode"], "0x2");
    let out = p.central_calls(
        "ChangeConfiguration",
        json!({"key":"OEM_FunctionMask","value":"0x4"}),
    );
    let reports = p.statuses(out);
    assert_eq!(reports[0]["status"], "Faulted");
}

#[test]
fn a_fault_over_unavailable_clears_back_to_unavailable() {
    let mut p = Pile::new(1);
    p.boot(900);
    let out = p.central_calls(
        "ChangeAvailability",
        json!({"connectorId":0,"type":"Inoperative"}),
    );
    p.statuses(out);
    let out = p.input(Input::Faults(&common::harness::faults(&["flash"])));
    let reports = p.statuses(out);
    assert!(reports.iter().all(|r| r["status"] == "Faulted"
        && r["errorCode"] == "InternalError"
        && r["vendorErrorCode"] == "0x100"));
    let out = p.input(Input::Faults(&common::harness::faults(&[])));
    let reports = p.statuses(out);
    assert!(
        reports.iter().all(|r| r["status"] == "Unavailable"),
        "{reports:?}"
    );
}

#[test]
fn reset_answers_then_restarts() {
    let mut p = Pile::new(1);
    p.boot(900);
    for (kind, hard) in [("Soft", false), ("Hard", true)] {
        let out = p.central_calls("Reset", json!({"type": kind}));
        // The ResetOrReboot security event is made durable: the restarted pile sends it.
        assert_eq!(
            out,
            vec![
                Output::Send(r#"[3,"cs-1",{"status":"Accepted"}]"#.into()),
                Output::Persist,
                Output::Restart { hard }
            ]
        );
        let last = p.cp.durable().security_events().back().unwrap();
        assert_eq!(last.event.kind, "ResetOrReboot");
    }
}

#[test]
fn trigger_firmware_and_diagnostics_status_report_idle() {
    let mut p = Pile::new(1);
    p.boot(900);
    for (message, action) in [
        ("FirmwareStatusNotification", "FirmwareStatusNotification"),
        (
            "DiagnosticsStatusNotification",
            "DiagnosticsStatusNotification",
        ),
    ] {
        let out =
            Pile::frames(&p.central_calls("TriggerMessage", json!({"requestedMessage": message})));
        assert_eq!(out[0][2]["status"], "Accepted");
        assert_eq!(out[1][2], action);
        assert_eq!(out[1][3], json!({"status":"Idle"}));
        p.reply(&out[1], json!({}));
    }
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage":"MeterValues","connectorId":1}),
    ));
    assert_eq!(out[0][2]["status"], "Rejected", "no meter has reported");
}

#[test]
fn faq_3_9_iccid_and_imsi_only_over_4g_alone() {
    let mut p = Pile::new(1);
    let lte = pile::NetState {
        connectivity: "4G".into(),
        wifi_rssi: -1,
        lte_rssi: -71,
        iccid: "89860000000000000001".into(),
        imsi: "460000000000001".into(),
        ip: "10.20.30.40".into(),
    };
    p.input(Input::Network(&lte));
    let boot = Pile::frames(&p.input(Input::Connected))[0].clone();
    assert_eq!(boot[3]["iccid"], "89860000000000000001");
    assert_eq!(boot[3]["imsi"], "460000000000001");
    p.accept(&boot, 900);
    // Over Ethernet, a triggered boot carries no 4G details.
    let eth = pile::NetState {
        connectivity: "ETH".into(),
        ..lte
    };
    p.input(Input::Network(&eth));
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage":"BootNotification"}),
    ));
    assert!(
        out[1][3].get("iccid").is_none() && out[1][3].get("imsi").is_none(),
        "{}",
        out[1]
    );
}

#[test]
fn a_plug_without_authorisation_goes_preparing_then_finishing_after_the_connection_timeout() {
    let mut p = Pile::new(1);
    p.boot(900);
    p.without_plug_and_charge();
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: true,
    });
    let reports = p.statuses(out);
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (
            reports[0]["connectorId"].as_i64(),
            reports[0]["status"].as_str()
        ),
        (Some(1), Some("Preparing"))
    );
    // ConnectionTimeOut is 120 s.
    let out = p.advance(secs(119));
    assert!(p.statuses(out).is_empty());
    let out = p.advance(secs(1));
    let reports = p.statuses(out);
    assert_eq!(
        reports[0]["status"], "Finishing",
        "ERR 3.20: the user still has to unplug"
    );
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: false,
    });
    assert_eq!(p.statuses(out)[0]["status"], "Available");
    // Connector 0 and connectors out of range have no plug.
    let out = p.input(Input::Plug {
        connector: 0,
        plugged: true,
    });
    assert!(p.statuses(out).is_empty());
    let out = p.input(Input::Plug {
        connector: 7,
        plugged: true,
    });
    assert!(p.statuses(out).is_empty());
}

#[test]
fn inoperative_while_preparing_is_scheduled_until_the_connector_leaves_preparing() {
    let mut p = Pile::new(1);
    p.boot(900);
    p.without_plug_and_charge();
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: true,
    });
    p.statuses(out);
    let out = p.central_calls(
        "ChangeAvailability",
        json!({"connectorId":1,"type":"Inoperative"}),
    );
    assert_eq!(out[0], Output::Persist);
    assert!(p.cp.durable().scheduled().contains(&1));
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Scheduled");
    assert!(p.statuses(out).is_empty(), "still Preparing");
    // Unplugged: Available (B1), then the scheduled Unavailable (A8).
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: false,
    });
    let seen: Vec<String> = p
        .statuses(out)
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, vec!["Available", "Unavailable"]);
    assert!(p.cp.durable().scheduled().is_empty());
}

#[test]
fn minimum_status_duration_holds_back_short_statuses() {
    let mut p = Pile::new(1);
    p.boot(900);
    p.without_plug_and_charge();
    p.central_calls(
        "ChangeConfiguration",
        json!({"key":"MinimumStatusDuration","value":"10"}),
    );
    // A plug for 5 s: never reported.
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: true,
    });
    assert!(p.statuses(out).is_empty());
    let out = p.advance(secs(5));
    assert!(p.statuses(out).is_empty());
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: false,
    });
    assert!(p.statuses(out).is_empty());
    let out = p.advance(secs(30));
    assert!(
        p.statuses(out).is_empty(),
        "Available → Preparing → Available within 10 s"
    );
    // A plug that stays: reported once it has lasted 10 s.
    let out = p.input(Input::Plug {
        connector: 1,
        plugged: true,
    });
    assert!(p.statuses(out).is_empty());
    let out = p.advance(secs(9));
    assert!(p.statuses(out).is_empty());
    let out = p.advance(secs(1));
    assert_eq!(p.statuses(out)[0]["status"], "Preparing");
}

#[test]
fn unlock_connector() {
    let mut p = Pile::new(2);
    p.boot(900);
    let out = p.central_calls("UnlockConnector", json!({"connectorId":2}));
    assert!(
        out.contains(&Output::Hardware(pile::hardware::HardwareCommand::Unlock {
            connector: 2
        }))
    );
    let out = Pile::frames(&out);
    assert_eq!(out[0], json!([3, "cs-1", {"status":"Unlocked"}]));
    // A connector that does not exist: nothing to unlock (what the OCA's test tool expects).
    for bad in [0, 3, -1] {
        let out = Pile::frames(&p.central_calls("UnlockConnector", json!({"connectorId": bad})));
        assert_eq!(out[0][0], 3, "{bad}");
        assert_eq!(out[0][2], json!({"status": "NotSupported"}), "{bad}");
    }
    // A stuck lock: the unlock fails, reported as ConnectorLockFailure (charging goes on).
    let out = p.input(Input::Faults(&common::harness::faults(&["lock_stuck"])));
    let statuses = p.statuses(out);
    assert!(
        statuses
            .iter()
            .all(|s| s["errorCode"] == "ConnectorLockFailure" && s["status"] == "Available"),
        "{statuses:?}"
    );
    let out = p.central_calls("UnlockConnector", json!({"connectorId":1}));
    assert!(!out.iter().any(|o| matches!(o, Output::Hardware(_))));
    assert_eq!(Pile::frames(&out)[0][2], json!({"status": "UnlockFailed"}));
}

#[test]
fn trigger_meter_values_samples_the_configured_measurands() {
    let mut p = Pile::new(2);
    p.boot(900);
    let reading = pile::hardware::MeterReading {
        energy_wh: 1_234_567,
        power_w: 7_360.0,
        current_a: 32.0,
        offered_a: 32.0,
        voltage_v: 230.0,
        frequency_hz: 50.0,
        temperatures_c: vec![41.5, 38.0, 36.5],
    };
    p.input(Input::Meter {
        connector: 1,
        reading: &reading,
    });
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage":"MeterValues","connectorId":1}),
    ));
    assert_eq!(out[0][2]["status"], "Accepted");
    assert_eq!(out[1][2], "MeterValues");
    let mv = &out[1][3];
    assert_eq!(mv["connectorId"], 1);
    assert!(mv.get("transactionId").is_none());
    let samples = mv["meterValue"][0]["sampledValue"].as_array().unwrap();
    let got: Vec<(String, String)> = samples
        .iter()
        .map(|s| {
            (
                s["measurand"].as_str().unwrap().to_owned(),
                s["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("Power.Offered", "7360"),
        ("Current.Offered", "32"),
        ("Current.Import", "32"),
        ("Energy.Active.Import.Register", "1234567"),
        ("Energy.Active.Import.Interval", "0"),
        ("Power.Active.Import", "7360"),
        ("Temperature", "41.5"),
        ("Temperature", "38"),
        ("Temperature", "36.5"),
        ("Voltage", "230"),
    ];
    assert_eq!(
        got,
        expected.map(|(m, v)| (m.to_owned(), v.to_owned())).to_vec(),
        "the FAQ's MeterValuesSampledData"
    );
    assert!(samples.iter().all(|s| s["context"] == "Trigger"));
    assert_eq!(samples[6]["unit"], "Celsius");
    p.reply(&out[1], json!({}));
    // The interval energy is what the register gained since the previous sample.
    let later = pile::hardware::MeterReading {
        energy_wh: 1_235_067,
        ..reading
    };
    p.input(Input::Meter {
        connector: 1,
        reading: &later,
    });
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage":"MeterValues","connectorId":1}),
    ));
    assert_eq!(
        out[1][3]["meterValue"][0]["sampledValue"][4]["value"],
        "500"
    );
    p.reply(&out[1], json!({}));
    // Connector 2 has no reading.
    let out = Pile::frames(&p.central_calls(
        "TriggerMessage",
        json!({"requestedMessage":"MeterValues","connectorId":2}),
    ));
    assert_eq!(out[0][2]["status"], "Rejected");
}
