//! A pile of ours goes from security profile 1 to 2 to 3 through OCPP alone, against our real
//! central over TLS: the central's password rotation (ChangeConfiguration AuthorizationKey),
//! SecurityProfile, InstallCertificate of the central's TLS root and of its CA, the certificate
//! renewal (ExtendedTriggerMessage SignChargePointCertificate, SignCertificate,
//! CertificateSigned), reconnecting and booting anew each time; a lower SecurityProfile is
//! Rejected. Then the central is restarted with `--client-ca` (its own CA): ours gets back in
//! with its certificate, a pile of profile 3 without one does not; and a signed firmware
//! campaign upgrades ours (the manufacturer root installed, the signature verified).
mod common;

use std::path::Path;
use std::time::Duration;

use common::central::{start_central_at, CentralProcess, TOKEN};
use common::{state_dir, PileProcess, WAIT};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{json, Value};

const ID: &str = "SECP1";
/// 20 bytes as hexadecimal: the AuthorizationKey, and the password registered at the central.
/// The image of the signed campaign (the vendor's naming: for the pile's model, M3G31H).
const IMAGE: &str = "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070";
const IMAGE_QUERY: &str = "XSmart.V2.0.110%28M3G31H%29%407KW.EVPro.070";
const KEY: &str = "00112233445566778899aabbccddeeff01234567";

/// The central's TLS: a root, and a certificate for 127.0.0.1 signed by it.
struct Tls {
    root_pem: String,
    chain_pem: String,
    key_pem: String,
}

fn tls() -> Tls {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "ocpile test TLS root");
    let root = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &root)
        .unwrap();
    Tls {
        root_pem: root.pem(),
        chain_pem: server.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// An HTTPS API client trusting `root_pem` only.
struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn new(addr: &str, root_pem: &str) -> Api {
        use transport::tls::{client_config, TlsVersion};
        let config = client_config(root_pem.as_bytes(), &[TlsVersion::Tls13], None).unwrap();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*config).clone())
            .timeout(WAIT)
            .build()
            .unwrap();
        Api {
            base: format!("https://{addr}"),
            client,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    }

    /// A command to the pile; the pile's answer's status.
    async fn command(&self, action: &str, payload: Value) -> String {
        let path = format!("/api/piles/{ID}/commands/{action}");
        let answer = self.ok("POST", &path, Some(payload)).await;
        answer["response"]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("{action}: {answer}"))
            .to_owned()
    }

    async fn change(&self, key: &str, value: &str) -> String {
        self.command("ChangeConfiguration", json!({"key": key, "value": value}))
            .await
    }

    /// The pile as the API shows it.
    async fn pile(&self) -> Value {
        self.call("GET", &format!("/api/piles/{ID}"), None).await.1
    }

    /// Polls until `done` holds of the pile (with a deadline).
    async fn until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        tokio::time::timeout(WAIT, async {
            loop {
                let pile = self.pile().await;
                if done(&pile) {
                    return pile;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the central never showed {what}"))
    }

    /// Polls until the pile booted again after `before` (its last boot) and is connected.
    async fn rebooted(&self, before: &Value, what: &str) -> Value {
        let pile = self
            .until(what, |p| {
                p["connected"] == true && p["last_boot"] != *before
            })
            .await;
        pile["last_boot"].clone()
    }
}

fn start_central(data: &Path, addr: &str, files: &Path, client_ca: bool) -> CentralProcess {
    let cert = files.join("tls-chain.pem");
    let key = files.join("tls-key.pem");
    let ca = files.join("central-ca.pem");
    let mut extra = vec![
        "--tls-cert".to_owned(),
        cert.display().to_string(),
        "--tls-key".to_owned(),
        key.display().to_string(),
        "--admission".to_owned(),
        "registered".to_owned(),
    ];
    if client_ca {
        extra.extend(["--client-ca".to_owned(), ca.display().to_string()]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    start_central_at(data, None, addr, &extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pile_goes_from_profile_1_to_2_to_3_through_ocpp_and_not_back() {
    let dir = state_dir("security-process");
    std::fs::create_dir_all(&dir).unwrap();
    let tls = tls();
    std::fs::write(dir.join("tls-root.pem"), &tls.root_pem).unwrap();
    std::fs::write(dir.join("tls-chain.pem"), &tls.chain_pem).unwrap();
    std::fs::write(dir.join("tls-key.pem"), &tls.key_pem).unwrap();
    let data = dir.join("central");
    let mut central = start_central(&data, "127.0.0.1:0", &dir, false);
    let addr = central.addr.clone();
    let api = Api::new(&addr, &tls.root_pem);
    // The central's CA (what signs the piles' certificates), for the pile's store and for
    // `--client-ca` later.
    let ca_pem = api
        .client
        .get(format!("{}/api/security/ca", api.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(ca_pem.contains("BEGIN CERTIFICATE"), "{ca_pem}");
    std::fs::write(dir.join("central-ca.pem"), &ca_pem).unwrap();
    api.ok(
        "POST",
        "/api/piles",
        Some(json!({"id": ID, "password": KEY})),
    )
    .await;

    // The pile starts over TLS (trusting the root it is given) with the Basic password.
    let root_file = dir.join("tls-root.pem");
    let csms = format!("wss://{addr}/ocpp/");
    let (pile, _control) = common::start_pile_with_control(
        ID,
        &csms,
        &dir.join("pile"),
        &["--ca", root_file.to_str().unwrap(), "--password", KEY],
    );
    let _pile: PileProcess = pile;
    let boot = api
        .until("the pile connected", |p| {
            p["connected"] == true && p["registration"] == "Accepted"
        })
        .await["last_boot"]
        .clone();

    // Profile 1: the central rotates the password (ChangeConfiguration AuthorizationKey), then
    // the profile; each reconnects.
    let rotated = api
        .ok("POST", &format!("/api/piles/{ID}/password/rotate"), None)
        .await;
    assert_eq!(rotated["status"], "Accepted", "{rotated}");
    let boot = api
        .rebooted(&boot, "a boot with the AuthorizationKey")
        .await;
    api.until("the old password no longer valid", |p| {
        p["previous_password_valid"] == false
    })
    .await;
    assert_eq!(api.change("SecurityProfile", "1").await, "Accepted");
    let boot = api.rebooted(&boot, "a boot under profile 1").await;
    assert_eq!(api.change("SecurityProfile", "0").await, "Rejected");

    // Profile 2: the TLS root and the central's CA as CentralSystemRootCertificates.
    for pem in [&tls.root_pem, &ca_pem] {
        let status = api
            .command(
                "InstallCertificate",
                json!({"certificateType": "CentralSystemRootCertificate", "certificate": pem}),
            )
            .await;
        assert_eq!(status, "Accepted");
    }
    assert_eq!(
        api.change("SecurityProfile", "3").await,
        "Rejected",
        "no certificate yet"
    );
    assert_eq!(api.change("SecurityProfile", "2").await, "Accepted");
    let boot = api.rebooted(&boot, "a boot under profile 2").await;

    // The certificate: renewal, SignCertificate, CertificateSigned accepted by the pile.
    let renew = api
        .ok("POST", &format!("/api/piles/{ID}/certificate/renew"), None)
        .await;
    assert_eq!(renew["response"]["status"], "Accepted", "{renew}");
    let path = format!("/api/piles/{ID}/certificates");
    let signed = tokio::time::timeout(WAIT, async {
        loop {
            let (_, body) = api.call("GET", &path, None).await;
            if body["signed"][0]["delivery"] == "Accepted" {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the pile accepts its certificate");
    assert!(
        signed["refused"].as_array().is_none_or(|r| r.is_empty()),
        "{signed}"
    );

    // Profile 3: the pile reconnects presenting its certificate, which the central's CA
    // signed; the central remembers it connected so.
    assert_eq!(api.change("SecurityProfile", "3").await, "Accepted");
    api.rebooted(&boot, "a boot under profile 3").await;
    api.until("the central remembering profile 3", |p| {
        p["connected_profile"] == 3
    })
    .await;
    for lower in ["0", "1", "2"] {
        assert_eq!(api.change("SecurityProfile", lower).await, "Rejected");
    }
    let raised = api
        .ok(
            "PATCH",
            &format!("/api/piles/{ID}"),
            Some(json!({"security_profile": 3})),
        )
        .await;
    assert_eq!(raised["security_profile"], 3, "{raised}");

    // The central again, now with `--client-ca` its own CA too: ours is let in (it presents
    // the certificate the central signed).
    central.kill();
    let central = start_central(&data, &addr, &dir, true);
    assert_eq!(central.addr, addr);
    // (A reconnection, not a boot: the pile was accepted before.) A fresh central knows no
    // connection but the ones made to it.
    api.until("the pile connected under profile 3", |p| {
        p["connected"] == true
    })
    .await;
    // Another registered pile of profile 3 without a client certificate is refused.
    api.ok(
        "POST",
        "/api/piles",
        Some(json!({"id": "SECP2", "security_profile": 3})),
    )
    .await;
    let mut other = transport::client::ClientConfig::new(format!("wss://{addr}/ocpp/SECP2"));
    other.tls = Some(
        transport::tls::client_config(
            tls.root_pem.as_bytes(),
            &[transport::tls::TlsVersion::Tls13],
            None,
        )
        .unwrap(),
    );
    assert!(transport::client::connect(&other).await.is_err());
    let (_, refused) = api.call("GET", "/api/handshakes/refused", None).await;
    let theirs = refused
        .as_array()
        .map(|r| r.iter().filter(|h| h["identity"] == "SECP2").count())
        .unwrap_or(0);
    assert!(theirs >= 1, "{refused}");
    let ours_refused = refused
        .as_array()
        .map(|r| r.iter().filter(|h| h["identity"] == ID).count())
        .unwrap_or(0);
    assert_eq!(ours_refused, 0, "{refused}");

    // A signed firmware campaign to the pile at profile 3: the central's demo signer, its
    // manufacturer root installed in the pile, SignedUpdateFirmware, the pile verifies the
    // image's signature and installs it.
    api.ok("POST", "/api/security/firmware-signer/demo", None)
        .await;
    let (status, root) = api.call("GET", "/api/security/firmware-root", None).await;
    assert_eq!(status, 200, "{root}");
    let root = root.as_str().expect("the root as PEM text").to_owned();
    let status = api
        .command(
            "InstallCertificate",
            json!({"certificateType": "ManufacturerRootCertificate", "certificate": root}),
        )
        .await;
    assert_eq!(status, "Accepted");
    let image = api
        .client
        .post(format!(
            "{}/api/firmware?name={IMAGE_QUERY}&version={IMAGE_QUERY}",
            api.base
        ))
        .bearer_auth(TOKEN)
        .body(vec![0x5Au8; 64 * 1024])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let image: Value = serde_json::from_str(&image).expect("the image as JSON");
    let campaign = api
        .ok(
            "POST",
            "/api/campaigns",
            Some(json!({"firmware": [image["id"]], "piles": [ID], "signed": true})),
        )
        .await;
    let path = format!("/api/campaigns/{}", campaign["id"]);
    let done = tokio::time::timeout(WAIT, async {
        loop {
            let (_, c) = api.call("GET", &path, None).await;
            if c["state"] == "finished" {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the signed campaign finishes");
    assert_eq!(done["counts"]["succeeded"], 1, "{done}");
    api.until("the pile on the signed image", |p| {
        p["connected"] == true && p["firmware_version"] == IMAGE
    })
    .await;
    let (_, commands) = api
        .call("GET", &format!("/api/piles/{ID}/commands"), None)
        .await;
    assert!(
        commands
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["action"] == "SignedUpdateFirmware"),
        "{commands}"
    );
    drop(central);
    let _ = std::fs::remove_dir_all(&dir);
}
