//! Signed firmware campaigns as a raw websocket pile sees them: a campaign with `"signed":
//! true` sends SignedUpdateFirmware (valid by the whitepaper's schema), whose signature
//! verifies with its signing certificate over the image bytes the central serves and whose
//! certificate chains to `GET /api/security/firmware-root`; the pile's
//! SignedFirmwareStatusNotification of that request carries the upgrade to its end
//! (succeeded), or InvalidSignature ends it failed with the status as reason; a status of
//! another request changes nothing; the operator's own signer replaces the demo one, and a
//! signer that does not hold together is a 400 with its reason.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use x509_parser::prelude::{FromDer, X509Certificate};

use common::node::{api, options, start};
use common::pile::{connect, Ws};

mod common;

fn schema(name: &str) -> jsonschema::Validator {
    let dir = std::env::var("OCPP16_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ocpp16")
        });
    let text = std::fs::read_to_string(dir.join("schemas-security").join(format!("{name}.json")))
        .or_else(|_| std::fs::read_to_string(dir.join("schemas").join(format!("{name}.json"))))
        .unwrap_or_else(|_| panic!("the schema {name} (set OCPP16_DIR)"));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&serde_json::from_str(&text).unwrap())
        .unwrap()
}

fn valid(name: &str, payload: &Value) {
    let errors: Vec<String> = schema(name)
        .iter_errors(payload)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{name} {payload}: {errors:?}");
}

/// A pile on a raw websocket: answers the central's CALLs (SignedUpdateFirmware with the
/// status it is given, the rest Accepted), checks each against the schemas, and keeps them.
struct Pile {
    ws: Ws,
    next: u32,
    update_answer: &'static str,
    received: Vec<(String, Value)>,
    sent: Vec<(String, String)>,
}

impl Pile {
    async fn connect(addr: SocketAddr, id: &str, update_answer: &'static str) -> Pile {
        let mut pile = Pile {
            ws: connect(addr, id).await,
            next: 0,
            update_answer,
            received: Vec::new(),
            sent: Vec::new(),
        };
        pile.boot("1.0").await;
        pile
    }

    async fn boot(&mut self, version: &str) {
        let boot = self
            .call(
                "BootNotification",
                json!({"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": version}),
            )
            .await;
        assert_eq!(boot["status"], "Accepted");
    }

    async fn handle(&mut self, m: Message) -> Option<Value> {
        let Message::Text(t) = m else {
            return None;
        };
        let frame: Value = serde_json::from_str(t.as_str()).unwrap();
        match frame[0].as_i64() {
            Some(3) => {
                let id = frame[1].as_str().unwrap();
                let action = self
                    .sent
                    .iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, a)| a.clone())
                    .expect("an answer to a CALL sent");
                valid(&format!("{action}Response"), &frame[2]);
                return Some(frame);
            }
            Some(2) => {}
            _ => panic!("the central answered with {frame}"),
        }
        let (id, action, payload) = (frame[1].clone(), frame[2].as_str().unwrap(), &frame[3]);
        valid(action, payload);
        let answer = match action {
            "SignedUpdateFirmware" => json!({"status": self.update_answer}),
            "GetConfiguration" => json!({"configurationKey": []}),
            "ChangeAvailability" | "TriggerMessage" | "ExtendedTriggerMessage" => {
                json!({"status": "Accepted"})
            }
            other => panic!("unexpected {other}"),
        };
        valid(&format!("{action}Response"), &answer);
        self.received.push((action.to_owned(), payload.clone()));
        self.ws
            .send(Message::text(json!([3, id, answer]).to_string()))
            .await
            .unwrap();
        None
    }

    async fn next_frame(&mut self) -> Message {
        tokio::time::timeout(Duration::from_secs(20), self.ws.next())
            .await
            .expect("a frame within 20 s")
            .unwrap()
            .unwrap()
    }

    async fn call(&mut self, action: &str, payload: Value) -> Value {
        self.next += 1;
        let id = format!("m{}", self.next);
        self.sent.push((id.clone(), action.to_owned()));
        valid(action, &payload);
        let frame = json!([2, id, action, payload]).to_string();
        self.ws.send(Message::text(frame)).await.unwrap();
        loop {
            let m = self.next_frame().await;
            if let Some(answer) = self.handle(m).await {
                if answer[1] == id.as_str() {
                    return answer[2].clone();
                }
            }
        }
    }

    /// Serves the central until it has sent a CALL of `action`; its payload (taken).
    async fn until_call(&mut self, action: &str) -> Value {
        loop {
            if let Some(i) = self.received.iter().position(|(a, _)| a == action) {
                return self.received.remove(i).1;
            }
            let m = self.next_frame().await;
            assert!(self.handle(m).await.is_none(), "no CALL outstanding");
        }
    }

    async fn status(&mut self, status: &str, request_id: &Value) {
        let answer = self
            .call(
                "SignedFirmwareStatusNotification",
                json!({"status": status, "requestId": request_id}),
            )
            .await;
        assert_eq!(answer, json!({}));
    }

    /// Serves the central until its campaign `id` shows `done` (polled between frames).
    async fn serve_until(
        &mut self,
        addr: SocketAddr,
        id: &Value,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, c) = api(addr, "GET", &format!("/api/campaigns/{id}"), None).await;
            assert_eq!(status, 200, "{c}");
            if done(&c) {
                return c;
            }
            assert!(tokio::time::Instant::now() < deadline, "never: {c}");
            if let Ok(m) = tokio::time::timeout(Duration::from_millis(100), self.ws.next()).await {
                assert!(self.handle(m.unwrap().unwrap()).await.is_none());
            }
        }
    }
}

/// Uploads an image, with `extra` query fields: the status and the answer.
async fn upload_with(
    addr: SocketAddr,
    name: &str,
    bytes: &[u8],
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut query = vec![("name", name)];
    query.extend_from_slice(extra);
    let answer = reqwest::Client::new()
        .post(format!("http://{addr}/api/firmware"))
        .query(&query)
        .bearer_auth(common::node::TOKEN)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

async fn upload(addr: SocketAddr, name: &str, version: &str, bytes: &[u8]) -> Value {
    let (status, image) = upload_with(addr, name, bytes, &[("version", version)]).await;
    assert_eq!(status, 201, "{image}");
    image
}

/// The signature a manufacturer makes: SHA-256 with ECDSA P-256, DER, base64.
fn manufacturer_signs(key_pem: &str, image: &[u8]) -> String {
    let der = rcgen::KeyPair::from_pem(key_pem).unwrap().serialize_der();
    let rng = ring::rand::SystemRandom::new();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &der,
        &rng,
    )
    .unwrap();
    base64::engine::general_purpose::STANDARD.encode(key.sign(&rng, image).unwrap().as_ref())
}

/// A dashboard page as a browser with the token's cookie receives it.
async fn dashboard(addr: SocketAddr, path: &str) -> String {
    let answer = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .header("cookie", format!("ocpile_token={}", common::node::TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200, "{path}");
    answer.text().await.unwrap()
}

fn der_of(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}

/// What a pile checks: the certificate chains to the root, and the signature (base64 of the
/// DER ECDSA signature over the image bytes, SHA-256) verifies with its key.
fn verifies(root_pem: &str, cert_pem: &str, image: &[u8], signature: &str) -> bool {
    let (root_der, cert_der) = (der_of(root_pem), der_of(cert_pem));
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    let (_, cert) = X509Certificate::from_der(&cert_der).unwrap();
    if cert.verify_signature(Some(root.public_key())).is_err() {
        return false;
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        cert.public_key().subject_public_key.data.as_ref(),
    )
    .verify(image, &signature)
    .is_ok()
}

fn result_of<'a>(c: &'a Value, pile: &str) -> &'a Value {
    c["piles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pile"] == pile)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_campaign_is_verified_installed_or_refused_by_the_pile() {
    let running = start(options("signed-firmware", "n1")).await;
    let addr = running.local_addr;
    let image: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let fw = upload(addr, "fw-2.0.bin", "2.0", &image).await;
    assert_eq!(fw["signed"], false);
    let _early = Pile::connect(addr, "SFW-0", "Accepted").await;

    // No signer yet: nothing signs the image.
    let (status, answer) = api(addr, "GET", "/api/security/firmware-root", None).await;
    assert_eq!(status, 404, "{answer}");
    let (status, answer) = api(
        addr,
        "POST",
        "/api/campaigns",
        Some(json!({"firmware": [fw["id"]], "piles": ["SFW-0"], "signed": true})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no firmware signer is set"),
        "{answer}"
    );

    let (status, demo) = api(addr, "POST", "/api/security/firmware-signer/demo", None).await;
    assert_eq!(status, 200, "{demo}");
    let (status, root) = api(addr, "GET", "/api/security/firmware-root", None).await;
    assert_eq!(status, 200);
    assert_eq!(root, demo["root"]);
    let root = root.as_str().unwrap().to_owned();
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");

    // A signed campaign to Installed.
    let mut good = Pile::connect(addr, "SFW-1", "Accepted").await;
    let (status, c) = api(
        addr,
        "POST",
        "/api/campaigns",
        Some(json!({"firmware": [fw["id"]], "piles": ["SFW-1"], "signed": true, "retries": 0})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["signed"], true);
    let update = good.until_call("SignedUpdateFirmware").await;
    let firmware = &update["firmware"];
    let served = reqwest::get(firmware["location"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(served.as_ref(), image.as_slice());
    let cert = firmware["signingCertificate"].as_str().unwrap();
    let signature = firmware["signature"].as_str().unwrap();
    assert!(verifies(&root, cert, &served, signature));
    assert!(!verifies(&root, cert, b"another image", signature));
    assert_eq!(c["firmware"][0]["signature"], signature);
    let request = update["requestId"].clone();
    // A status of another request is no news of this one.
    let other = json!(request.as_i64().unwrap() + 1000);
    good.status("InvalidSignature", &other).await;
    for s in [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    ] {
        good.status(s, &request).await;
    }
    good.boot("2.0").await;
    let done = good
        .serve_until(addr, &c["id"], |c| c["state"] == "finished")
        .await;
    let pile = result_of(&done, "SFW-1");
    assert_eq!(pile["result"], "succeeded", "{done}");
    assert_eq!(pile["status"], "Installed");
    assert_eq!(pile["to_version"], "2.0");

    // InvalidSignature ends the pile failed, with the status as reason.
    let mut bad = Pile::connect(addr, "SFW-2", "Accepted").await;
    let (status, c) = api(
        addr,
        "POST",
        "/api/campaigns",
        Some(json!({"firmware": [fw["id"]], "piles": ["SFW-2"], "signed": true})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let update = bad.until_call("SignedUpdateFirmware").await;
    let request = update["requestId"].clone();
    bad.status("Downloading", &request).await;
    bad.status("Downloaded", &request).await;
    bad.status("InvalidSignature", &request).await;
    let done = bad
        .serve_until(addr, &c["id"], |c| c["state"] == "finished")
        .await;
    let pile = result_of(&done, "SFW-2");
    assert_eq!(pile["result"], "failed", "{done}");
    assert_eq!(pile["error"], "the pile reports InvalidSignature");
    assert_eq!(done["counts"]["failed"], 1);

    // A pile that answers InvalidCertificate fails at once.
    let mut refusing = Pile::connect(addr, "SFW-3", "InvalidCertificate").await;
    let (status, c) = api(
        addr,
        "POST",
        "/api/campaigns",
        Some(json!({"firmware": [fw["id"]], "piles": ["SFW-3"], "signed": true})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let done = refusing
        .serve_until(addr, &c["id"], |c| c["state"] == "finished")
        .await;
    assert_eq!(
        result_of(&done, "SFW-3")["error"],
        "SignedUpdateFirmware refused: InvalidCertificate"
    );

    // The dashboard shows it, and offers the option.
    let page = dashboard(addr, &format!("/campaigns/{}", c["id"])).await;
    assert!(page.contains("signed: SignedUpdateFirmware"), "{page}");
    assert!(
        page.contains("SignedUpdateFirmware refused: InvalidCertificate"),
        "{page}"
    );
    let list = dashboard(addr, "/campaigns").await;
    assert!(list.contains(r#"name="signed""#), "{list}");
    drop(running);
}

/// A root and a signing certificate it issued, with the certificate's key: PEM.
fn identity() -> (String, String, String) {
    let root_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut root = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let root_cert = root.self_signed(&root_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&root, &root_key);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (root_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_signer_replaces_the_demo_one_and_a_bad_one_is_refused() {
    let running = start(options("signed-firmware-signer", "n1")).await;
    let addr = running.local_addr;
    let (root, cert, key) = identity();
    let (other_root, _, other_key) = identity();
    for (body, why) in [
        (
            json!({"root": other_root, "certificate": cert, "key": key}),
            "not issued by the root",
        ),
        (
            json!({"root": root, "certificate": cert, "key": other_key}),
            "not the certificate's",
        ),
        (json!({"root": root, "certificate": "x", "key": key}), "PEM"),
        (json!({"root": root, "certificate": cert}), "key"),
    ] {
        let (status, answer) = api(addr, "POST", "/api/security/firmware-signer", Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(why), "{answer}");
    }
    let (status, answer) = api(
        addr,
        "POST",
        "/api/security/firmware-signer",
        Some(json!({"root": root, "certificate": cert, "key": key})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.get("key").is_none());
    let (_, served_root) = api(addr, "GET", "/api/security/firmware-root", None).await;
    assert_eq!(der_of(served_root.as_str().unwrap()), der_of(&root));
    let (_, shown) = api(addr, "GET", "/api/security/firmware-signer", None).await;
    assert_eq!(
        der_of(shown["certificate"].as_str().unwrap()),
        der_of(&cert)
    );

    let image = b"signed by the operator".to_vec();
    let fw = upload(addr, "op.bin", "3.0", &image).await;
    let mut pile = Pile::connect(addr, "SFW-OP", "Accepted").await;
    let (status, c) = api(
        addr,
        "POST",
        "/api/campaigns",
        Some(json!({"firmware": [fw["id"]], "piles": ["SFW-OP"], "signed": true})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let update = pile.until_call("SignedUpdateFirmware").await;
    let firmware = &update["firmware"];
    assert_eq!(
        der_of(firmware["signingCertificate"].as_str().unwrap()),
        der_of(&cert)
    );
    assert!(verifies(
        &root,
        firmware["signingCertificate"].as_str().unwrap(),
        &image,
        firmware["signature"].as_str().unwrap()
    ));
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_of_the_options_is_kept_at_the_start() {
    let (root, cert, key) = identity();
    let mut o = options("signed-firmware-options", "n1");
    let dir = common::fresh_dir("signed-firmware-options-files");
    std::fs::create_dir_all(&dir).unwrap();
    let (chain_path, key_path) = (dir.join("chain.pem"), dir.join("key.pem"));
    std::fs::write(&chain_path, format!("{cert}{root}")).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    o.firmware_signing_cert = Some(chain_path.clone());
    o.firmware_signing_key = Some(key_path);
    let running = start(o).await;
    let (status, shown) = api(
        running.local_addr,
        "GET",
        "/api/security/firmware-signer",
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(der_of(shown["root"].as_str().unwrap()), der_of(&root));
    assert_eq!(
        der_of(shown["certificate"].as_str().unwrap()),
        der_of(&cert)
    );
    drop(running);

    // A chain without its root does not start.
    std::fs::write(&chain_path, &cert).unwrap();
    let mut o = options("signed-firmware-options-bad", "n1");
    o.firmware_signing_cert = Some(chain_path);
    o.firmware_signing_key = Some(dir.join("key.pem"));
    let failed = central::server::start(o).await.err().expect("no start");
    assert!(failed.to_string().contains("manufacturer root"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_given_the_manufacturers_signature_is_sent_with_it() {
    let running = start(options("signed-firmware-upload", "n1")).await;
    let addr = running.local_addr;
    let (root, cert, key) = identity();
    let image = b"the manufacturer's image".to_vec();
    let signature = manufacturer_signs(&key, &image);
    let other = manufacturer_signs(&key, b"another image");
    let fw = upload(addr, "m.bin", "4.0", &image).await;
    let path = format!("/api/firmware/{}/signature", fw["id"]);
    for (body, why) in [
        (
            json!({"signature": other, "signing_certificate": cert}),
            "does not verify",
        ),
        (json!({"signature": signature}), "signing_certificate"),
        (
            json!({"signature": "%%", "signing_certificate": cert}),
            "base64",
        ),
        (
            json!({"signature": signature, "signing_certificate": "x"}),
            "signing certificate",
        ),
    ] {
        let (status, answer) = api(addr, "POST", &path, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(why),
            "{why}: {answer}"
        );
    }
    let (status, answer) = api(
        addr,
        "POST",
        "/api/firmware/999/signature",
        Some(json!({"signature": signature, "signing_certificate": cert})),
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    let (status, fw) = api(
        addr,
        "POST",
        &path,
        Some(json!({"signature": signature, "signing_certificate": cert})),
    )
    .await;
    assert_eq!(status, 200, "{fw}");
    assert_eq!(fw["signed"], true);
    // No firmware signer is set: the image's own signature is enough.
    let mut pile = Pile::connect(addr, "SFW-M", "Accepted").await;
    let (status, c) = api(
        addr,
        "POST",
        "/api/campaigns",
        Some(json!({"firmware": [fw["id"]], "piles": ["SFW-M"], "signed": true})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let update = pile.until_call("SignedUpdateFirmware").await;
    assert_eq!(update["firmware"]["signature"], signature.as_str());
    assert_eq!(
        der_of(update["firmware"]["signingCertificate"].as_str().unwrap()),
        der_of(&cert)
    );
    assert!(verifies(&root, &cert, &image, &signature));
    drop(running);
}
