//! SignedUpdateFirmware on the pile (security whitepaper edition 2): the signing certificate
//! checked against the ManufacturerRootCertificates, the image's signature checked over the
//! bytes the host hands over, SignedFirmwareStatusNotification with the requestId, and the
//! security events of a refusal; every frame checked against the official schemas.

mod common;

use base64::Engine;
use common::bench::{install, root, Bench};
use common::harness::secs;
use pile::{FirmwareEvent, Input, Output};
use rcgen::{CertificateParams, CertifiedIssuer, DnType, KeyPair};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};

const LOCATION: &str = "http://192.0.2.1/firmware/V9.1";
const IMAGE: &[u8] = b"the bytes of firmware V9.1";

/// A signing certificate `ca` signed, for `key`, its validity edited by `edit`.
fn signing_certificate(
    ca: &CertifiedIssuer<'static, KeyPair>,
    key: &KeyPair,
    edit: impl Fn(&mut CertificateParams),
) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "Firmware Signing");
    edit(&mut params);
    params.signed_by(key, ca).unwrap().pem()
}

/// base64 of the ECDSA P-256 SHA-256 (ASN.1 DER) signature of `message` with `key`.
fn sign(key: &KeyPair, message: &[u8]) -> String {
    let rng = SystemRandom::new();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &key.serialize_der(), &rng)
            .unwrap();
    let signature = pair.sign(&rng, message).unwrap();
    base64::engine::general_purpose::STANDARD.encode(signature.as_ref())
}

fn request(certificate: &str, signature: &str) -> Value {
    json!({
        "requestId": 7,
        "retries": 1,
        "retryInterval": 30,
        "firmware": {
            "location": LOCATION,
            "retrieveDateTime": "2026-11-24T12:00:00.000Z",
            "signingCertificate": certificate,
            "signature": signature,
        }
    })
}

/// A pile with a ManufacturerRootCertificate installed, and that root.
fn bench_with_root() -> (Bench, CertifiedIssuer<'static, KeyPair>) {
    let mut b = Bench::new();
    let ca = root(None);
    assert_eq!(
        install(&mut b, "ManufacturerRootCertificate", &ca.pem()),
        "Accepted"
    );
    (b, ca)
}

/// The SignedFirmwareStatusNotification statuses sent since CALL `from`, each with requestId 7.
fn signed_statuses(b: &Bench, from: usize) -> Vec<String> {
    b.calls[from..]
        .iter()
        .filter(|f| f[2] == "SignedFirmwareStatusNotification")
        .map(|f| {
            assert_eq!(f[3]["requestId"], 7, "{f}");
            f[3]["status"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn event_kinds(b: &Bench) -> Vec<String> {
    b.events()
        .iter()
        .map(|f| f[3]["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs the download: the pile asks for the image's bytes, gets `image`.
fn download(b: &mut Bench, image: &[u8]) {
    let out = b.p.advance(secs(1));
    assert!(
        out.contains(&Output::Download {
            url: LOCATION.into(),
            image: true,
        }),
        "{out:?}"
    );
    b.serve(out);
    let out = b.p.input(Input::Firmware(&FirmwareEvent::Downloaded {
        version: Some("V9.1".into()),
        image: Some(image.to_vec()),
    }));
    b.serve(out);
}

#[test]
fn a_signed_image_that_verifies_is_installed() {
    let (mut b, ca) = bench_with_root();
    let key = KeyPair::generate().unwrap();
    let certificate = signing_certificate(&ca, &key, |_| {});
    let start = b.calls.len();
    let answer = b.ask(
        "SignedUpdateFirmware",
        request(&certificate, &sign(&key, IMAGE)),
    );
    assert_eq!(answer, json!({"status": "Accepted"}));
    // Another upgrade while this one runs: Rejected.
    assert_eq!(
        b.status(
            "SignedUpdateFirmware",
            request(&certificate, &sign(&key, IMAGE))
        ),
        "Rejected"
    );
    download(&mut b, IMAGE);
    assert_eq!(
        signed_statuses(&b, start),
        [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing"
        ]
    );
    // No FirmwareStatusNotification of OCPP 1.6 for a signed upgrade.
    assert!(!b.calls[start..]
        .iter()
        .any(|f| f[2] == "FirmwareStatusNotification"));
    // ExtendedTriggerMessage: the signed notification, with the requestId.
    let from = b.calls.len();
    assert_eq!(
        b.status(
            "ExtendedTriggerMessage",
            json!({"requestedMessage": "FirmwareStatusNotification"})
        ),
        "Accepted"
    );
    assert_eq!(signed_statuses(&b, from), ["Installing"]);
    let from = b.calls.len();
    let out = b.p.advance(pile::INSTALL_TIME);
    b.serve(out);
    assert_eq!(signed_statuses(&b, from), ["Installed"]);
    assert!(b.p.log.contains(&Output::Restart { hard: true }));
    assert_eq!(b.p.cp.firmware_version(), "V9.1");
    // The new firmware reports it with its start.
    let b = b.restart();
    assert!(event_kinds(&b).contains(&"FirmwareUpdated".to_owned()));
}

#[test]
fn a_forged_signature_keeps_the_old_firmware() {
    let (mut b, ca) = bench_with_root();
    let before = b.p.cp.firmware_version().to_owned();
    let key = KeyPair::generate().unwrap();
    let certificate = signing_certificate(&ca, &key, |_| {});
    let start = b.calls.len();
    // Signed over other bytes than the image's.
    let forged = sign(&key, b"another image");
    assert_eq!(
        b.status("SignedUpdateFirmware", request(&certificate, &forged)),
        "Accepted"
    );
    download(&mut b, IMAGE);
    assert_eq!(
        signed_statuses(&b, start),
        ["Downloading", "Downloaded", "InvalidSignature"]
    );
    let out = b.p.advance(pile::INSTALL_TIME + secs(60));
    b.serve(out);
    assert_eq!(signed_statuses(&b, start).len(), 3, "nothing after it");
    assert!(!b.p.log.contains(&Output::Restart { hard: true }));
    assert_eq!(b.p.cp.firmware_version(), before);
    let events: Vec<&Value> = b.events()[..].to_vec();
    let last = events.last().unwrap();
    assert_eq!(last[3]["type"], "InvalidFirmwareSignature");
    // The connectors are available again.
    let last_status = b
        .calls
        .iter()
        .rev()
        .find(|f| f[2] == "StatusNotification" && f[3]["connectorId"] == 1)
        .unwrap();
    assert_eq!(last_status[3]["status"], "Available");
    // A new upgrade is taken.
    assert_eq!(
        b.status(
            "SignedUpdateFirmware",
            request(&certificate, &sign(&key, IMAGE))
        ),
        "Accepted"
    );
}

#[test]
fn a_signing_certificate_of_another_root_is_an_invalid_certificate() {
    let (mut b, _ca) = bench_with_root();
    let other = root(Some(&[9]));
    let key = KeyPair::generate().unwrap();
    let certificate = signing_certificate(&other, &key, |_| {});
    let start = b.calls.len();
    assert_eq!(
        b.status(
            "SignedUpdateFirmware",
            request(&certificate, &sign(&key, IMAGE))
        ),
        "InvalidCertificate"
    );
    assert_eq!(
        event_kinds(&b).last().unwrap(),
        "InvalidFirmwareSigningCertificate"
    );
    // No download, no notification.
    let out = b.p.advance(secs(120));
    assert!(!out.iter().any(|o| matches!(o, Output::Download { .. })));
    b.serve(out);
    assert!(signed_statuses(&b, start).is_empty());

    // Without any ManufacturerRootCertificate, the same.
    let mut bare = Bench::new();
    assert_eq!(
        bare.status(
            "SignedUpdateFirmware",
            request(&certificate, &sign(&key, IMAGE))
        ),
        "InvalidCertificate"
    );
}

#[test]
fn an_expired_or_not_yet_valid_signing_certificate_is_an_invalid_certificate() {
    let (mut b, ca) = bench_with_root();
    let key = KeyPair::generate().unwrap();
    let expired = signing_certificate(&ca, &key, |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let early = signing_certificate(&ca, &key, |p| {
        p.not_before = rcgen::date_time_ymd(2030, 1, 1);
        p.not_after = rcgen::date_time_ymd(2031, 1, 1);
    });
    for certificate in [expired, early] {
        assert_eq!(
            b.status(
                "SignedUpdateFirmware",
                request(&certificate, &sign(&key, IMAGE))
            ),
            "InvalidCertificate"
        );
    }
    let kinds = event_kinds(&b);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "InvalidFirmwareSigningCertificate")
            .count(),
        2
    );
    // A signature that is no base64: Rejected.
    let good = signing_certificate(&ca, &key, |_| {});
    assert_eq!(
        b.status("SignedUpdateFirmware", request(&good, "not base64 !")),
        "Rejected"
    );
}

#[test]
fn a_restart_during_a_signed_download_downloads_and_checks_again() {
    let (mut b, ca) = bench_with_root();
    let key = KeyPair::generate().unwrap();
    let certificate = signing_certificate(&ca, &key, |_| {});
    assert_eq!(
        b.status(
            "SignedUpdateFirmware",
            request(&certificate, &sign(&key, IMAGE))
        ),
        "Accepted"
    );
    let out = b.p.advance(secs(1));
    b.serve(out);
    // The state file (JSON) keeps the certificate and the signature.
    let mut b = b.restart();
    assert!(b.p.log.contains(&Output::Download {
        url: LOCATION.into(),
        image: true,
    }));
    // Downloading reaches the central with the next notification of the upgrade.
    let out = b.p.advance(secs(1));
    b.serve(out);
    let out = b.p.input(Input::Firmware(&FirmwareEvent::Downloaded {
        version: Some("V9.1".into()),
        image: Some(IMAGE.to_vec()),
    }));
    b.serve(out);
    assert_eq!(
        signed_statuses(&b, 0),
        [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing"
        ]
    );
}
