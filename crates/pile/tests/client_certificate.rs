//! The pile's client certificate (security whitepaper edition 2, A02) and security profiles
//! raised for real, driven through frames: the CSR the pile sends (read back with x509-parser),
//! the CertificateSigned chains it takes and refuses, the connections each profile asks the
//! host for, and the fall back to the last accepted profile.

mod common;

use common::bench::{install, root, Bench, KEY, WSS};
use common::harness::{secs, Pile};
use pile::config::keys;
use pile::{Input, Output, Target};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{json, Value};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// ExtendedTriggerMessage SignChargePointCertificate; the CSR of the SignCertificate sent.
fn request_csr(b: &mut Bench) -> String {
    let before = b.calls.len();
    let status = b.status(
        "ExtendedTriggerMessage",
        json!({"requestedMessage": "SignChargePointCertificate"}),
    );
    assert_eq!(status, "Accepted");
    let sign = b.calls[before..]
        .iter()
        .find(|f| f[2] == "SignCertificate")
        .expect("a SignCertificate")
        .clone();
    sign[3]["csr"].as_str().unwrap().to_owned()
}

/// A CA signed by `root`.
fn intermediate(root: &CertifiedIssuer<'static, KeyPair>) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "ocpile test intermediate");
    CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), root).unwrap()
}

/// The P-256 public key of a CSR, for rcgen to certify.
struct CsrKey(Vec<u8>);

impl rcgen::PublicKeyData for CsrKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// The certificate of a CSR (its key, its CN), signed by `ca`, as PEM; `edit` changes its
/// parameters first.
fn sign(
    csr: &str,
    ca: &CertifiedIssuer<'static, KeyPair>,
    edit: impl Fn(&mut CertificateParams),
) -> String {
    let der = x509_parser::pem::parse_x509_pem(csr.as_bytes()).unwrap().1;
    let (_, request) = X509CertificationRequest::from_der(&der.contents).unwrap();
    let info = &request.certification_request_info;
    let cn = info.subject.iter_common_name().next().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, cn.as_str().unwrap());
    edit(&mut params);
    let key = CsrKey(info.subject_pki.subject_public_key.data.to_vec());
    params.signed_by(&key, ca).unwrap().pem()
}

/// A certificate with the pile's name for a key that is not the pile's, signed by `ca`.
fn stranger(ca: &CertifiedIssuer<'static, KeyPair>) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "SN0001");
    let key = KeyPair::generate().unwrap();
    params.signed_by(&key, ca).unwrap().pem()
}

/// CertificateSigned with this chain: its status, and the security events it raised.
fn certificate_signed(b: &mut Bench, chain: &str) -> (String, Vec<Value>) {
    let before = b.calls.len();
    let status = b.status("CertificateSigned", json!({"certificateChain": chain}));
    let events = b.calls[before..]
        .iter()
        .filter(|f| f[2] == "SecurityEventNotification")
        .map(|f| f[3].clone())
        .collect();
    (status, events)
}

fn connects(out: &[Output]) -> Vec<Target> {
    out.iter()
        .filter_map(|o| match o {
            Output::Connect(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// The connection dropped and up again (the host carried out the Connect): served.
fn reconnect(b: &mut Bench) {
    b.p.input(Input::Disconnected);
    let out = b.p.input(Input::Connected);
    b.serve(out);
}

#[test]
fn the_csr_names_the_pile_and_is_signed_with_its_new_key() {
    let mut b = Bench::new();
    assert_eq!(b.change("CpoName", "Example CPO"), "Accepted");
    let csr = request_csr(&mut b);
    let der = x509_parser::pem::parse_x509_pem(csr.as_bytes()).unwrap().1;
    assert_eq!(der.label, "CERTIFICATE REQUEST");
    let (_, request) = X509CertificationRequest::from_der(&der.contents).unwrap();
    request.verify_signature().expect("the CSR's own signature");
    let subject = &request.certification_request_info.subject;
    let cn: Vec<&str> = subject
        .iter_common_name()
        .map(|n| n.as_str().unwrap())
        .collect();
    let o: Vec<&str> = subject
        .iter_organization()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!((cn, o), (vec!["SN0001"], vec!["Example CPO"]));
    // ECDSA P-256.
    let spki = &request.certification_request_info.subject_pki;
    assert_eq!(spki.algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
    assert_eq!(spki.subject_public_key.data.len(), 65);
    // A second request makes a new key.
    let again = request_csr(&mut b);
    let der2 = x509_parser::pem::parse_x509_pem(again.as_bytes())
        .unwrap()
        .1;
    let (_, second) = X509CertificationRequest::from_der(&der2.contents).unwrap();
    assert_ne!(
        second
            .certification_request_info
            .subject_pki
            .subject_public_key
            .data,
        spki.subject_public_key.data
    );
}

#[test]
fn certificate_signed_takes_only_a_linked_chain_for_its_key_from_an_installed_root() {
    let mut b = Bench::new();
    let ca = root(None);
    assert_eq!(
        install(&mut b, "CentralSystemRootCertificate", &ca.pem()),
        "Accepted"
    );
    // Nothing asked for yet.
    let (status, events) = certificate_signed(&mut b, &stranger(&ca));
    assert_eq!(status, "Rejected");
    assert_eq!(events[0]["type"], "InvalidChargePointCertificate");

    let csr = request_csr(&mut b);
    let mid = intermediate(&ca);
    let leaf = sign(&csr, &mid, |_| {});
    let refused = |b: &mut Bench, chain: &str, why: &str| {
        let (status, events) = certificate_signed(b, chain);
        assert_eq!(status, "Rejected", "{why}");
        assert_eq!(events.len(), 1, "{why}");
        assert_eq!(events[0]["type"], "InvalidChargePointCertificate", "{why}");
        assert!(b.p.cp.durable().client_certificate().is_none(), "{why}");
    };
    // Wrong order: the intermediate first.
    refused(&mut b, &format!("{}{leaf}", mid.pem()), "wrong order");
    // Not linking: the leaf alone (its issuer, the intermediate, is no installed root).
    refused(&mut b, &leaf, "not linking");
    // Another root.
    let other = root(None);
    refused(&mut b, &sign(&csr, &other, |_| {}), "another root");
    // Another key, with the pile's name.
    refused(&mut b, &stranger(&ca), "wrong key");
    // Another identity in the CN.
    let renamed = sign(&csr, &ca, |p| {
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, "SN0002");
    });
    refused(&mut b, &renamed, "wrong name");
    // Expired (the pile's clock reads 2026-11-24).
    let expired = sign(&csr, &ca, |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    refused(&mut b, &expired, "expired");
    // CertificateSignedMaxChainSize bounds the chain (the length check: the core's unit tests).
    assert_eq!(
        b.p.cp.config().int(keys::CERTIFICATE_SIGNED_MAX_CHAIN_SIZE),
        10000
    );

    // The good chain, leaf first: taken, and kept across a restart.
    let (status, events) = certificate_signed(&mut b, &format!("{leaf}{}", mid.pem()));
    assert_eq!((status.as_str(), events.len()), ("Accepted", 0));
    let b = b.restart();
    let cert = b.p.cp.durable().client_certificate().expect("kept");
    assert_eq!(cert.chain.len(), 2);
    assert!(b.p.cp.durable().pending_key().is_none());
}

/// Profile 2 reached through OCPP: the password, TLS settings, a CentralSystem root.
fn at_profile_2(b: &mut Bench, ca: &CertifiedIssuer<'static, KeyPair>) {
    assert_eq!(b.change("AuthorizationKey", KEY), "Accepted");
    reconnect(b);
    assert_eq!(b.change("SecurityProfile", "1"), "Accepted");
    reconnect(b);
    assert_eq!(
        install(b, "CentralSystemRootCertificate", &ca.pem()),
        "Accepted"
    );
    assert_eq!(b.change("VendorWebsocketSettings", WSS), "Accepted");
    reconnect(b);
    let out = b.p.central_calls(
        "ChangeConfiguration",
        json!({"key": "SecurityProfile", "value": "2"}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    let target = connects(&out)
        .pop()
        .expect("a new connection under profile 2");
    assert!(target.url.starts_with("wss://"));
    assert_eq!(target.basic, Some(("SN0001".into(), KEY.into())));
    assert_eq!(target.trust_anchors.as_deref(), Some(ca.pem().as_str()));
    assert!(target.client_identity.is_none());
    reconnect(b);
    assert!(b.p.cp.is_accepted());
}

#[test]
fn profile_3_connects_with_the_signed_certificate_and_cannot_be_lowered() {
    let mut b = Bench::new();
    let ca = root(None);
    at_profile_2(&mut b, &ca);
    assert_eq!(
        b.change("SecurityProfile", "3"),
        "Rejected",
        "no certificate yet"
    );
    let csr = request_csr(&mut b);
    let leaf = sign(&csr, &ca, |_| {});
    assert_eq!(certificate_signed(&mut b, &leaf).0, "Accepted");
    let out = b.p.central_calls(
        "ChangeConfiguration",
        json!({"key": "SecurityProfile", "value": "3"}),
    );
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    let target = connects(&out)
        .pop()
        .expect("a new connection under profile 3");
    let identity = target.client_identity.expect("the client certificate");
    assert_eq!(identity.chain_pem.trim(), leaf.trim());
    assert!(identity.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert!(!format!("{identity:?}").contains(identity.key_pem.lines().nth(1).unwrap()));
    reconnect(&mut b);
    for lower in ["0", "1", "2"] {
        assert_eq!(b.change("SecurityProfile", lower), "Rejected");
    }
    // A renewed certificate under profile 3: the pile reconnects with it.
    let csr = request_csr(&mut b);
    let renewed = sign(&csr, &ca, |_| {});
    let out =
        b.p.central_calls("CertificateSigned", json!({"certificateChain": renewed}));
    assert_eq!(Pile::frames(&out)[0][2]["status"], "Accepted");
    let target = connects(&out)
        .pop()
        .expect("a new connection with the new certificate");
    assert_eq!(
        target.client_identity.unwrap().chain_pem.trim(),
        renewed.trim()
    );
}

#[test]
fn a_raised_profile_without_an_accepted_boot_falls_back_to_the_last_one() {
    let mut b = Bench::new();
    let ca = root(None);
    at_profile_2(&mut b, &ca);
    let csr = request_csr(&mut b);
    assert_eq!(
        certificate_signed(&mut b, &sign(&csr, &ca, |_| {})).0,
        "Accepted"
    );
    let out = b.p.central_calls(
        "ChangeConfiguration",
        json!({"key": "SecurityProfile", "value": "3"}),
    );
    assert!(connects(&out)[0].client_identity.is_some());
    // The central refuses every handshake under profile 3.
    b.p.input(Input::Refused { status: 403 });
    let out = b.p.advance(secs(301));
    let back = connects(&out)
        .pop()
        .expect("a connection under the old profile");
    assert!(back.client_identity.is_none());
    assert_eq!(back.trust_anchors.as_deref(), Some(ca.pem().as_str()));
    assert_eq!(b.p.cp.config().int(keys::SECURITY_PROFILE), 2);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Log(l) if l.contains("SecurityProfile 3 reached no accepted boot: back to 2"))));
    // Back in: the failure is reported as security events.
    let out = b.p.input(Input::Connected);
    b.serve(out);
    let infos: Vec<&Value> = b.events().iter().map(|f| &f[3]["techInfo"]).collect();
    assert!(
        infos.contains(&&json!(
            "SecurityProfile 3 reached no accepted boot: back to 2"
        )),
        "{infos:?}"
    );
    let kinds: Vec<&Value> = b.events().iter().map(|f| &f[3]["type"]).collect();
    assert!(kinds.contains(&&json!("FailedToAuthenticateAtCentralSystem")));
}
