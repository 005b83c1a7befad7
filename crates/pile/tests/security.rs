//! The security whitepaper's part of the pile (edition 2) as far as it is built: its keys,
//! the certificate stores, ExtendedTriggerMessage and the security events, driven through
//! frames; everything the pile sends checked against the official security schemas.

mod common;

use common::bench::{install, root, Bench, KEY, WSS};
use common::harness::{secs, Pile};
use pile::{Durable, Input, Output, Target};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::{json, Value};
use x509_parser::prelude::{FromDer, X509Certificate};

/// The whitepaper's hashes of a root, computed here from the DER.
fn expected_hashes(pem: &str) -> Value {
    let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents;
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let sha = |b: &[u8]| {
        ring::digest::digest(&ring::digest::SHA256, b)
            .as_ref()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let serial: String = cert
        .raw_serial()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    json!({
        "hashAlgorithm": "SHA256",
        "issuerNameHash": sha(cert.tbs_certificate.issuer.as_raw()),
        "issuerKeyHash": sha(&cert.tbs_certificate.subject_pki.subject_public_key.data),
        "serialNumber": serial.trim_start_matches('0'),
    })
}

#[test]
fn the_security_keys_and_authorization_key_is_never_read_back() {
    let mut b = Bench::new();
    let all = b.ask("GetConfiguration", json!({}));
    let listed = |name: &str| {
        all["configurationKey"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["key"] == name)
            .cloned()
    };
    for (name, value, readonly) in [
        ("SecurityProfile", "0", false),
        ("CpoName", "", false),
        ("CertificateSignedMaxChainSize", "10000", true),
        ("CertificateStoreMaxLength", "10", true),
        ("AdditionalRootCertificateCheck", "false", true),
    ] {
        let k = listed(name).unwrap_or_else(|| panic!("{name} listed"));
        assert_eq!(k["value"], value, "{name}");
        assert_eq!(k["readonly"], readonly, "{name}");
    }
    assert!(listed("AuthorizationKey").is_none());

    // 16 to 20 bytes as hexadecimal, nothing else.
    for bad in [
        "",
        "0011223344556677889900aabbccddee0",
        "00112233445566778899aabbccddeeff0123456789",
        "zz112233445566778899aabbccddeeff",
    ] {
        assert_eq!(b.change("AuthorizationKey", bad), "Rejected", "{bad:?}");
    }
    assert_eq!(b.change("CpoName", "Example CPO"), "Accepted");
    assert_eq!(b.change("CertificateStoreMaxLength", "20"), "Rejected");

    // Accepted: the pile reconnects with it as the Basic password, its identity the user.
    let out = b.p.central_calls(
        "ChangeConfiguration",
        json!({"key":"AuthorizationKey","value":KEY}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    let connect = out.iter().find_map(|o| match o {
        Output::Connect(t) => Some(t.clone()),
        _ => None,
    });
    assert_eq!(
        connect,
        Some(Target {
            url: "ws://central.example:9000/ocpp/SN0001".into(),
            basic: Some(("SN0001".into(), KEY.into())),
            trust_anchors: None,
            client_identity: None,
        })
    );
    b.p.input(Input::Disconnected);
    let out = b.p.input(Input::Connected);
    b.serve(out);

    // Never read back: not in the list, unknown by name, nowhere in a frame.
    let all = b.ask("GetConfiguration", json!({}));
    assert!(!all.to_string().contains(KEY));
    let named = b.ask("GetConfiguration", json!({"key": ["AuthorizationKey"]}));
    assert_eq!(named, json!({"unknownKey": ["AuthorizationKey"]}));
    assert_eq!(b.p.cp.config_value("AuthorizationKey"), "");
    assert!(b.calls.iter().all(|f| !f.to_string().contains(KEY)));
    // The change is a security event (without the key).
    let events = b.events();
    assert_eq!(
        events.last().unwrap()[3]["type"],
        "ReconfigurationOfSecurityParameters"
    );

    // It survives a restart, and stays the password.
    let b = b.restart();
    assert_eq!(b.p.cp.target().basic, Some(("SN0001".into(), KEY.into())));
}

#[test]
fn the_security_profile_is_only_raised_and_only_with_what_it_needs() {
    let mut b = Bench::new();
    // Profile 1 needs a password.
    assert_eq!(b.change("SecurityProfile", "1"), "Rejected");
    assert_eq!(b.change("AuthorizationKey", KEY), "Accepted");
    b.p.input(Input::Disconnected);
    let out = b.p.input(Input::Connected);
    b.serve(out);
    assert_eq!(b.change("SecurityProfile", "1"), "Accepted");
    // A raised profile is taken with a new connection.
    b.p.input(Input::Disconnected);
    let out = b.p.input(Input::Connected);
    b.serve(out);
    assert_eq!(b.change("SecurityProfile", "0"), "Rejected");
    assert_eq!(b.change("SecurityProfile", "4"), "Rejected");
    // Profile 2 needs TLS and a CentralSystem root.
    assert_eq!(b.change("SecurityProfile", "2"), "Rejected");
    let ca = root(None);
    assert_eq!(
        install(&mut b, "CentralSystemRootCertificate", &ca.pem()),
        "Accepted"
    );
    assert_eq!(b.change("SecurityProfile", "2"), "Rejected");
    assert_eq!(b.change("VendorWebsocketSettings", WSS), "Accepted");
    b.p.input(Input::Disconnected);
    let out = b.p.input(Input::Connected);
    b.serve(out);
    assert_eq!(b.change("SecurityProfile", "2"), "Accepted");
    // A raised profile is taken with a new connection.
    b.p.input(Input::Disconnected);
    let out = b.p.input(Input::Connected);
    b.serve(out);
    // Profile 3 needs a client certificate (none yet).
    assert_eq!(b.change("SecurityProfile", "3"), "Rejected");
    // Nothing brings it down: not lowering, not plain WS, not the last root going.
    assert_eq!(b.change("SecurityProfile", "1"), "Rejected");
    assert_eq!(
        b.change(
            "VendorWebsocketSettings",
            "WS,central.example,9000,/ocpp/,ocpp1.6,,,"
        ),
        "Rejected"
    );
    let hashes = expected_hashes(&ca.pem());
    assert_eq!(
        b.status("DeleteCertificate", json!({"certificateHashData": hashes})),
        "Failed"
    );
    assert_eq!(b.p.cp.config().int(pile::config::keys::SECURITY_PROFILE), 2);
    let kinds: Vec<&Value> = b.events().iter().map(|f| &f[3]["techInfo"]).collect();
    assert!(
        kinds.contains(&&json!("SecurityProfile set to 2")),
        "{kinds:?}"
    );
    // After a restart too.
    let mut b = b.restart();
    assert_eq!(b.change("SecurityProfile", "0"), "Rejected");
    assert_eq!(b.p.cp.config().int(pile::config::keys::SECURITY_PROFILE), 2);
}

#[test]
fn install_list_delete_round_trip_with_the_whitepapers_hashes() {
    let mut b = Bench::new();
    for kind in [
        "CentralSystemRootCertificate",
        "ManufacturerRootCertificate",
    ] {
        assert_eq!(
            b.ask(
                "GetInstalledCertificateIds",
                json!({"certificateType": kind})
            ),
            json!({"status":"NotFound"})
        );
    }
    // A serial number with a leading zero byte: listed without it.
    let ca = root(Some(&[0x00, 0x8f, 0x01, 0x02]));
    let maker = root(None);
    assert_eq!(
        install(&mut b, "CentralSystemRootCertificate", &ca.pem()),
        "Accepted"
    );
    assert_eq!(
        install(&mut b, "ManufacturerRootCertificate", &maker.pem()),
        "Accepted"
    );
    let listed = b.ask(
        "GetInstalledCertificateIds",
        json!({"certificateType": "CentralSystemRootCertificate"}),
    );
    let ca_hashes = expected_hashes(&ca.pem());
    assert_eq!(ca_hashes["serialNumber"], "8f0102");
    assert_eq!(
        listed,
        json!({"status":"Accepted","certificateHashData":[ca_hashes]})
    );
    let listed = b.ask(
        "GetInstalledCertificateIds",
        json!({"certificateType": "ManufacturerRootCertificate"}),
    );
    assert_eq!(
        listed["certificateHashData"],
        json!([expected_hashes(&maker.pem())])
    );

    // They survive a restart.
    let mut b = b.restart();
    let listed = b.ask(
        "GetInstalledCertificateIds",
        json!({"certificateType": "CentralSystemRootCertificate"}),
    );
    assert_eq!(listed["certificateHashData"], json!([ca_hashes]));

    // Deleted by its hashes (any case, leading zeros or not), then gone.
    let mut upper = ca_hashes.clone();
    upper["issuerNameHash"] = json!(ca_hashes["issuerNameHash"].as_str().unwrap().to_uppercase());
    upper["serialNumber"] = json!("008F0102");
    assert_eq!(
        b.status("DeleteCertificate", json!({"certificateHashData": upper})),
        "Accepted"
    );
    assert_eq!(
        b.status(
            "DeleteCertificate",
            json!({"certificateHashData": ca_hashes})
        ),
        "NotFound"
    );
    assert_eq!(
        b.ask(
            "GetInstalledCertificateIds",
            json!({"certificateType": "CentralSystemRootCertificate"})
        ),
        json!({"status":"NotFound"})
    );
    // The manufacturer's root stays.
    assert_eq!(
        b.status(
            "GetInstalledCertificateIds",
            json!({"certificateType": "ManufacturerRootCertificate"})
        ),
        "Accepted"
    );
}

#[test]
fn only_root_certificates_valid_now_are_installed_and_the_stores_are_bounded() {
    let mut b = Bench::new();
    let ca = root(None);
    // A certificate the root signed: no root.
    let mut leaf = CertificateParams::new(vec!["pile.example".to_owned()]).unwrap();
    leaf.is_ca = IsCa::NoCa;
    let leaf = leaf.signed_by(&KeyPair::generate().unwrap(), &ca).unwrap();
    // Self-signed but no CA.
    let plain = CertificateParams::new(vec!["self.example".to_owned()])
        .unwrap()
        .self_signed(&KeyPair::generate().unwrap())
        .unwrap();
    // A root that expired.
    let mut old = CertificateParams::new(Vec::<String>::new()).unwrap();
    old.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    old.not_before = rcgen::date_time_ymd(2000, 1, 1);
    old.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let old = old.self_signed(&KeyPair::generate().unwrap()).unwrap();
    // Two certificates at once.
    let two = format!("{}{}", ca.pem(), root(None).pem());
    for pem in [
        leaf.pem(),
        plain.pem(),
        old.pem(),
        two,
        "not a certificate".to_owned(),
        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n".to_owned(),
    ] {
        assert_eq!(
            install(&mut b, "CentralSystemRootCertificate", &pem),
            "Rejected",
            "{pem}"
        );
    }
    assert_eq!(
        b.ask(
            "GetInstalledCertificateIds",
            json!({"certificateType": "CentralSystemRootCertificate"})
        ),
        json!({"status":"NotFound"})
    );
    // CertificateStoreMaxLength (10) in all: the eleventh is refused; the same one again
    // is no new one.
    let first = root(None);
    assert_eq!(
        install(&mut b, "CentralSystemRootCertificate", &first.pem()),
        "Accepted"
    );
    for _ in 1..10 {
        assert_eq!(
            install(&mut b, "ManufacturerRootCertificate", &root(None).pem()),
            "Accepted"
        );
    }
    assert_eq!(
        install(&mut b, "ManufacturerRootCertificate", &root(None).pem()),
        "Rejected"
    );
    assert_eq!(
        install(&mut b, "CentralSystemRootCertificate", &first.pem()),
        "Accepted"
    );
    let listed = b.ask(
        "GetInstalledCertificateIds",
        json!({"certificateType": "ManufacturerRootCertificate"}),
    );
    assert_eq!(listed["certificateHashData"].as_array().unwrap().len(), 9);
}

#[test]
fn extended_trigger_message() {
    let mut b = Bench::new();
    let trigger = |b: &mut Bench, payload: Value| {
        let before = b.calls.len();
        let status = b.status("ExtendedTriggerMessage", payload);
        let sent: Vec<Value> = b.calls[before..].to_vec();
        (status, sent)
    };
    let (status, sent) = trigger(&mut b, json!({"requestedMessage":"LogStatusNotification"}));
    assert_eq!(status, "Accepted");
    assert_eq!(sent[0][2], "LogStatusNotification");
    assert_eq!(sent[0][3], json!({"status":"Idle"}));
    let (status, sent) = trigger(&mut b, json!({"requestedMessage":"BootNotification"}));
    assert_eq!(
        (status.as_str(), &sent[0][2]),
        ("Accepted", &json!("BootNotification"))
    );
    let (status, sent) = trigger(&mut b, json!({"requestedMessage":"Heartbeat"}));
    assert_eq!(
        (status.as_str(), &sent[0][2]),
        ("Accepted", &json!("Heartbeat"))
    );
    let (status, sent) = trigger(
        &mut b,
        json!({"requestedMessage":"StatusNotification","connectorId":1}),
    );
    assert_eq!(status, "Accepted");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0][3]["connectorId"], 1);
    let (status, sent) = trigger(
        &mut b,
        json!({"requestedMessage":"FirmwareStatusNotification"}),
    );
    assert_eq!(status, "Accepted");
    assert_eq!(sent[0][3], json!({"status":"Idle"}));
    // No reading yet: no MeterValues.
    let (status, _) = trigger(&mut b, json!({"requestedMessage":"MeterValues"}));
    assert_eq!(status, "Rejected");
    let (status, sent) = trigger(
        &mut b,
        json!({"requestedMessage":"SignChargePointCertificate"}),
    );
    assert_eq!(status, "Accepted");
    assert_eq!(sent[0][2], "SignCertificate");
    for message in ["LogStatusNotification", "Heartbeat"] {
        let (status, sent) = trigger(
            &mut b,
            json!({"requestedMessage": message, "connectorId": 2}),
        );
        assert_eq!((status.as_str(), sent.len()), ("Rejected", 0), "{message}");
    }
}

#[test]
fn security_events_are_durable_and_sent_once() {
    // Two starts without the central: both StartupOfTheDevice wait, durable.
    let p = Pile::new(1);
    let text = serde_json::to_string(p.cp.durable()).unwrap();
    let durable: Durable = serde_json::from_str(&text).unwrap();
    let b = Bench::from(durable);
    let events = b.events();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|f| f[3]["type"] == "StartupOfTheDevice"));
    assert_eq!(events[0][1], "sec-1-1");
    assert_eq!(events[1][1], "sec-2-2");
    assert_eq!(b.p.cp.security_queue_len(), 0);
    assert_eq!(b.p.cp.security_log().len(), 2);

    // Answered: not again after a restart (only the new start).
    let b = b.restart();
    let events = b.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0][3]["techInfo"], "start 3 of the pile");
    assert_eq!(b.p.cp.security_log().len(), 3);

    // A Reset: ResetOrReboot, sent by the restarted pile with its start.
    let mut b = b;
    assert_eq!(b.status("Reset", json!({"type":"Hard"})), "Accepted");
    assert!(b.p.log.contains(&Output::Restart { hard: true }));
    let b = b.restart();
    let kinds: Vec<&Value> = b.events().iter().map(|f| &f[3]["type"]).collect();
    assert_eq!(kinds, ["ResetOrReboot", "StartupOfTheDevice"]);
}

#[test]
fn a_security_event_is_retried_under_the_same_id_until_answered() {
    let mut p = Pile::new(1);
    let out = p.input(Input::Connected);
    let boot = Pile::frames(&out)[0].clone();
    let mut pending = Pile::frames(&p.reply(
        &boot,
        json!({"status":"Accepted","currentTime":"2026-11-24T12:00:00.000Z","interval":900}),
    ));
    // Answer the status notifications; keep the security event unanswered.
    let mut event = None;
    while let Some(f) = pending.pop() {
        if f[2] == "SecurityEventNotification" {
            event = Some(f);
        } else {
            pending.extend(Pile::frames(&p.reply(&f, json!({}))));
        }
    }
    let event = event.expect("the start's event");
    // An error: again after TransactionMessageRetryInterval (60 s), same id.
    let text = json!([4, event[1], "InternalError", "busy", {}]).to_string();
    assert!(Pile::frames(&p.input(Input::Frame(&text))).is_empty());
    assert!(Pile::frames(&p.advance(secs(59))).is_empty());
    let again = Pile::frames(&p.advance(secs(1)));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0][1], event[1]);
    // The connection drops before the answer: sent again on the next one, same id.
    p.input(Input::Disconnected);
    let mut queue = Pile::frames(&p.input(Input::Connected));
    let mut seen = Vec::new();
    while let Some(f) = queue.pop() {
        if f[0] != 2 {
            continue;
        }
        if f[2] == "SecurityEventNotification" {
            seen.push(f[1].clone());
        }
        queue.extend(Pile::frames(&p.reply(&f, json!({}))));
    }
    assert_eq!(seen, [event[1].clone()]);
    assert_eq!(p.cp.security_queue_len(), 0);
    // Nothing more.
    assert!(Pile::frames(&p.advance(secs(600)))
        .iter()
        .all(|f| f[2] != "SecurityEventNotification"));
}

#[test]
fn a_refused_handshake_is_one_failed_authentication_event_per_run_of_attempts() {
    // A 500 is no failed authentication.
    let mut p = Pile::new(1);
    p.input(Input::Refused { status: 500 });
    assert_eq!(p.cp.security_log().len(), 1, "only the start");
    let mut b = Bench::from(p.cp.durable().clone());
    // After a connection: the first 401 is an event, the retries are not.
    b.p.input(Input::Disconnected);
    for _ in 0..5 {
        b.p.input(Input::Refused { status: 401 });
    }
    b.p.input(Input::Refused { status: 403 });
    let failed: Vec<_> =
        b.p.cp
            .security_log()
            .iter()
            .filter(|e| e.kind == "FailedToAuthenticateAtCentralSystem")
            .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].tech_info.as_deref(),
        Some("the central system refused the connection with HTTP 401 as SN0001")
    );
    // Sent once the pile is in again.
    let before = b.calls.len();
    let out = b.p.input(Input::Connected);
    b.serve(out);
    let sent: Vec<&Value> = b.calls[before..]
        .iter()
        .filter(|f| f[2] == "SecurityEventNotification")
        .map(|f| &f[3]["type"])
        .collect();
    assert_eq!(sent, ["FailedToAuthenticateAtCentralSystem"]);
}

#[test]
fn the_settings_fallback_goes_back_to_the_profile_and_settings_of_the_last_accepted_boot() {
    let mut b = Bench::new();
    assert_eq!(b.change("AuthorizationKey", KEY), "Accepted");
    let ca = root(None);
    assert_eq!(
        install(&mut b, "CentralSystemRootCertificate", &ca.pem()),
        "Accepted"
    );
    // TLS settings, and profile 2 before a boot over them was accepted.
    assert_eq!(b.change("VendorWebsocketSettings", WSS), "Accepted");
    b.p.input(Input::Disconnected);
    let out = b.p.input(Input::Connected);
    let boot = Pile::frames(&out)[0].clone();
    assert_eq!(boot[2], "BootNotification");
    assert_eq!(b.change("SecurityProfile", "2"), "Accepted");
    // The boot is never accepted: back to the last accepted boot's profile (0) and plain WS,
    // said in the log and as a security event, not silently.
    b.p.input(Input::Disconnected);
    let out = b.p.advance(secs(301));
    assert!(out.iter().any(
        |o| matches!(o, Output::Log(l) if l.contains("SecurityProfile 2 reached no accepted boot: back to 0"))
    ));
    assert_eq!(b.p.cp.config().int(pile::config::keys::SECURITY_PROFILE), 0);
    assert_eq!(
        b.p.cp.config_value("VendorWebsocketSettings"),
        "WS,central.example,9000,/ocpp/,ocpp1.6,,,"
    );
    assert!(b.p.cp.target().url.starts_with("ws://"));
    assert_eq!(b.p.cp.target().trust_anchors, None);
    let out = b.p.input(Input::Connected);
    b.serve(out);
    let infos: Vec<&Value> = b.events().iter().map(|f| &f[3]["techInfo"]).collect();
    assert!(
        infos.contains(&&json!(
            "SecurityProfile 2 reached no accepted boot: back to 0"
        )),
        "{infos:?}"
    );
}
