//! The security extension on the central's side, as a raw websocket pile sees it: its CSRs
//! (ECDSA P-256 and RSA 2048 keys) signed by the central's CA and the chain sent as
//! CertificateSigned (the leaf, then the CA; it verifies against `GET /api/security/ca`); CSRs
//! with a wrong signature, another identity's CN, another O than the CpoName, or a key weaker
//! than the policy (RSA 1024, P-192) Rejected and the refusal recorded; the renewal through the
//! API; security events stored once and listed; every frame the central sends valid by the
//! official schemas; a client certificate of the central's CA taken by its TLS listener.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use x509_parser::prelude::{FromDer, X509Certificate};

use common::node::{api, options, start};
use common::pile::{connect, Ws};

mod common;

/// An RSA 2048 key (PKCS#8), made once with `openssl genpkey` (ring cannot generate RSA keys).
const RSA_2048_KEY: &str = "\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDq7rjXNc/7kYis
SlD0eX53BdTS7PGwNcInThXFF5NGFCAqKE7rg/gYc9+rOJUmtXINy4ZW3giDATGF
pgqZ3cNNSMmbp+tzRAtvE/xOUPt+Rad2ELHvrkmBA11C79UpFHmOZpunWjiOybcH
/NaJPzH8BA7kko7PKD3V3Wt/yVapB/o7Ybl9xJaRzhpdotgmB6a7BMzMGcl5IllC
y/Gc5t2TMZiDBApcLRDLNc543SzoEQlbWQEWPX4nnMUrO0d7Bao7P/SU8RA4AbWb
4zCvhBusDFwnzYLKJIUTsszrt/EWAJepf8KGW+Qg94JUrRrut+9lDeBIGpZefnwI
RAysBREbAgMBAAECggEAVZZVgZXJqPEKlRXX61CtqWfW8ma+3/6dtlsEpFJj5WZk
l2cq5TMlOadRJ1wMPldg7zSjwtbNzAgtxe5JM2fuhCPNyubAaLQz5CooQ1HOZWCz
0tffMx3QCm+y1LVx9y7N3/pyn2PHcgF7rC3I7KQ4rgK+eDgKTd7vtA+f36R2bUpX
avdds50UAwmQ+/6k3qjx75dGhR9os1xXNv4oGE7kkevXY0NhG8BvoiGL1qPZCVQQ
UUAJF8mcTr5HtwJ9uM78iBJFC2agGAMohy9XZZdRUdCnIBZX3wU7bL6W59PbjvQR
1GQxh+kqbrmRL+AxjMk3RMFPQRFG9goWDSdshoe+pQKBgQD+F0d8xx+zKYXk4EYR
QGYkLSFxRX909RPit1yRQu4LwRrLa4EgZSMA8j+JZGKf1krk1uGcNw634l/bEp0t
PE/4l4hfOjnF7TdWP/7ofrTjxK3svYsdOoKlagdB4ceF6BBMLT8mQNoOoMxH8epO
3wcSBtnBV1qe+uWMtuIrDpT0BQKBgQDsspfibpe5sOidOMlhDE7kyp3slVdl7QsY
b9p1fEct7Vc5ArOw5OsMhdtiT/QIXlXeNUHOQ1kgYzNQJdYBjF55pEmb6MH23EzM
SHLA5yUgVbOXnv9NbTkv7LolME5Xfs9lVlPQnHqZHogdv0YsOW9tDsRFbe1Ip74N
7s1I2CUanwKBgFbFwm8VXXkE7CnegW8wy/D8zJfvQPjDHVhmgCFHdx3ig3EGtKFI
iKyxDguwkZG+T/NYgtGjZ85aa5vX/n9NQo5FyZejvckfGq/EyRvC8al7KF5Z2KFR
sv4keHgCT+4l8zLgnNlGenFWboz/S6JFvhdk6YaCe3shebUVW6WSpEG1AoGANiZR
awLkAR5AyR8hqusW7W6RHHu5596H6EpGjxQkcJRYnPlKRJDKWS4SV3Z1HKkAOfqz
GE3+CNPI/G/7epUzU97K3DkujpwtkZqNbiYzLyeME4bTX1I6gAVHPJTFh2zCY6uR
NytlPLxoZW3JzvpAzJFRQ5T3cOS3LRbRrfWM338CgYEA6KYCD9er54dzCtj1iSRV
22NqvnLV8CNOXk7nNUC7EIlpoqshzdRFivQxEzkU25NnBPcmPKxH6rirotHdvKwZ
ILlXgnfODKyd9vGm8WXxynq7RmF+3AokDEMJwD7k0qRecFwGefnsCIuUVtgexzkS
SXATsYffX8OSc1i2U1O6xPU=
-----END PRIVATE KEY-----\n";

/// CSRs made once with `openssl req` (CN SEC-1, O ACME): keys weaker than the policy, which
/// neither rcgen nor ring make.
const RSA_1024_CSR: &str = "\
-----BEGIN CERTIFICATE REQUEST-----
MIIBXjCByAIBADAfMQ0wCwYDVQQKDARBQ01FMQ4wDAYDVQQDDAVTRUMtMTCBnzAN
BgkqhkiG9w0BAQEFAAOBjQAwgYkCgYEAxbFgVS8yYH/QzkuvsH3iQ2wlProR5B4E
HWUs7moIZJuSTjv3HYSMYw8eBQc/kkqTf4zY0PmaSld0kqmIIlQbBbGw1D9N21yz
YlHHI705tkL31f8jKDYBlpZ2DgJRWMtxn8WWvmzvhqSZxqiJBX4Tj2GndnSDyRFd
xSc9W0ZfN38CAwEAAaAAMA0GCSqGSIb3DQEBCwUAA4GBADsmK7fLSRq3xZ17Od+l
OmGoUQ3cGmsZaRbIr5dCnVgh+F9trr5pSwKX2zQ1r4t3Gys2iaNoYYFkbJjdO454
+CCh8k749/LKxWZ+k5T/jt/4Bgy0dKCfmeOp7vDm4rVXRQNeYv8waEVaPSaLodB9
L7Iu90p4UO4rY0uEGyrFHZqq
-----END CERTIFICATE REQUEST-----\n";
const P192_CSR: &str = "\
-----BEGIN CERTIFICATE REQUEST-----
MIG5MHECAQAwHzENMAsGA1UECgwEQUNNRTEOMAwGA1UEAwwFU0VDLTEwSTATBgcq
hkjOPQIBBggqhkjOPQMBAQMyAATPDY/dZ6HSbU81tM/+K7hXhNf1kynqHEOObhxF
+0fi2NJDz4Bn7eXW9R0ebDQhs0OgADAKBggqhkjOPQQDAgM4ADA1AhkA0KxWGMF/
qUJKIM1U1fizqNpGsA30tYuOAhhOsPiGmM2SDNCzc/XbjJAAQ764jCGEzbE=
-----END CERTIFICATE REQUEST-----\n";

fn schemas_dir() -> PathBuf {
    std::env::var("OCPP16_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/ocpp16")
        })
}

/// The official schema of a payload (`Action` or `ActionResponse`): the security whitepaper's,
/// else OCPP 1.6's.
fn schema(name: &str) -> jsonschema::Validator {
    let dir = schemas_dir();
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

/// A pile on a raw websocket: answers the central's CALLs (its configuration with a CpoName,
/// CertificateSigned and ExtendedTriggerMessage Accepted), keeps what it was sent, and checks
/// every frame of the central against the schemas.
struct Pile {
    ws: Ws,
    next: u32,
    /// The central's CALLs: action and payload.
    received: Vec<(String, Value)>,
    /// The actions of the CALLs sent, by message id.
    sent: Vec<(String, String)>,
}

impl Pile {
    async fn connect(addr: std::net::SocketAddr, id: &str) -> Pile {
        let mut pile = Pile {
            ws: connect(addr, id).await,
            next: 0,
            received: Vec::new(),
            sent: Vec::new(),
        };
        let boot = pile
            .call(
                "BootNotification",
                json!({"chargePointVendor": "V", "chargePointModel": "M"}),
            )
            .await;
        assert_eq!(boot["status"], "Accepted");
        pile
    }

    /// Handles one frame: answers a CALL (None), or returns a CALLRESULT (checked).
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
            "GetConfiguration" => json!({"configurationKey": [
                {"key": "CpoName", "readonly": false, "value": "ACME"},
                {"key": "GetConfigurationMaxKeys", "readonly": true, "value": "100"},
            ]}),
            "CertificateSigned" | "ExtendedTriggerMessage" => json!({"status": "Accepted"}),
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

    /// Sends a CALL and returns its CALLRESULT's payload, answering the central meanwhile.
    async fn call(&mut self, action: &str, payload: Value) -> Value {
        self.next += 1;
        let id = format!("m{}", self.next);
        self.sent.push((id.clone(), action.to_owned()));
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

    /// Serves the central until `check` answers true (polled between frames).
    async fn serve_until<F, Fut>(&mut self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            match tokio::time::timeout(Duration::from_millis(50), self.ws.next()).await {
                Ok(m) => {
                    assert!(self.handle(m.unwrap().unwrap()).await.is_none());
                }
                Err(_) => {
                    if check().await {
                        return;
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{what}: not within 20 s"
                    );
                }
            }
        }
    }
}

/// A CSR of `key` for the subject CN `cn` and O `o`, PEM.
fn csr(key: &rcgen::KeyPair, cn: &str, o: Option<&str>) -> String {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    if let Some(o) = o {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, o);
    }
    params.serialize_request(key).unwrap().pem().unwrap()
}

fn p256() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

/// The PEM blocks' DER of a text.
fn ders(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map(|p| p.unwrap().contents)
        .collect()
}

/// The same CSR with a byte of its signature changed.
fn tampered(pem: &str) -> String {
    let mut der = ders(pem).remove(0);
    let last = der.len() - 1;
    der[last] ^= 0x01;
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(&der);
    format!("-----BEGIN CERTIFICATE REQUEST-----\n{text}\n-----END CERTIFICATE REQUEST-----\n")
}

/// Checks a CertificateSigned chain: the leaf for `pile` with `key`, then the CA of
/// `ca_pem`, the leaf signed by it, for client authentication.
fn check_chain(chain: &str, ca_pem: &str, pile: &str, key: &rcgen::KeyPair) -> String {
    let certs = ders(chain);
    assert_eq!(certs.len(), 2, "the leaf, then the CA: {chain}");
    assert_eq!(
        certs[1],
        ders(ca_pem)[0],
        "the chain ends with the central's CA"
    );
    let (_, leaf) = X509Certificate::from_der(&certs[0]).unwrap();
    let (_, ca) = X509Certificate::from_der(&certs[1]).unwrap();
    assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
    leaf.verify_signature(Some(ca.public_key()))
        .expect("the leaf is signed by the CA");
    assert_eq!(
        leaf.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        pile
    );
    assert_eq!(
        leaf.subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "ACME"
    );
    assert_eq!(
        leaf.public_key().subject_public_key.data.as_ref(),
        key.public_key_raw(),
        "the CSR's key is certified"
    );
    let eku = leaf.extended_key_usage().unwrap().expect("an EKU").value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(!leaf.is_ca());
    let validity = leaf.validity();
    let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
    assert_eq!(days, 365);
    leaf.raw_serial_as_string().replace(':', "").to_uppercase()
}

/// The CSR scenario on a central of the database `db` (none: SQLite in its data directory).
async fn csrs_signed_and_refused(label: &str, db: Option<String>) {
    let mut o = options(label, "n1");
    o.db = db;
    let running = start(o).await;
    let addr = running.local_addr;
    let (status, ca_pem) = api(addr, "GET", "/api/security/ca", None).await;
    assert_eq!(status, 200);
    let ca_pem = ca_pem.as_str().unwrap().to_owned();
    assert!(
        ca_pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "{ca_pem}"
    );

    let mut pile = Pile::connect(addr, "SEC-1").await;
    // Its CpoName is read after the boot: the CSR's O is checked against it from then on.
    pile.serve_until("the CpoName read", || async {
        let (_, config) = api(addr, "GET", "/api/piles/SEC-1/configuration", None).await;
        config.to_string().contains("ACME")
    })
    .await;

    // ECDSA P-256 and RSA 2048: signed, the chain sent as CertificateSigned.
    let rsa = rcgen::KeyPair::from_pem(RSA_2048_KEY).unwrap();
    let mut serials = Vec::new();
    for key in [p256(), rsa] {
        let answer = pile
            .call(
                "SignCertificate",
                json!({"csr": csr(&key, "SEC-1", Some("ACME"))}),
            )
            .await;
        assert_eq!(answer["status"], "Accepted");
        let signed = pile.until_call("CertificateSigned").await;
        let chain = signed["certificateChain"].as_str().unwrap();
        serials.push(check_chain(chain, &ca_pem, "SEC-1", &key));
    }
    pile.serve_until("both deliveries recorded", || async {
        let (_, c) = api(addr, "GET", "/api/piles/SEC-1/certificates", None).await;
        c["signed"].as_array().unwrap().len() == 2
            && c["signed"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["delivery"] == "Accepted")
    })
    .await;
    let (_, certs) = api(addr, "GET", "/api/piles/SEC-1/certificates", None).await;
    let listed: Vec<String> = certs["signed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["serial"].as_str().unwrap().to_owned())
        .collect();
    for serial in &serials {
        assert!(listed.contains(serial), "{serial} in {listed:?}");
    }
    // Both sent as commands, recorded.
    let (_, commands) = api(addr, "GET", "/api/piles/SEC-1/commands", None).await;
    let sent = commands
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "CertificateSigned" && c["outcome"] == "response")
        .count();
    assert_eq!(sent, 2, "{commands}");

    // Refused: each Rejected, its reason recorded, nothing sent.
    let refusals: [(String, &str); 6] = [
        (
            tampered(&csr(&p256(), "SEC-1", Some("ACME"))),
            "signature does not verify",
        ),
        (
            csr(&p256(), "SEC-2", Some("ACME")),
            "not the pile's identity",
        ),
        (
            csr(&p256(), "SEC-1", Some("OTHER")),
            "not the pile's CpoName",
        ),
        (RSA_1024_CSR.to_owned(), "RSA of 1024 bits"),
        (P192_CSR.to_owned(), "EC on the curve 1.2.840.10045.3.1.1"),
        ("garbage".to_owned(), "not a PEM"),
    ];
    for (csr, _) in &refusals {
        let answer = pile.call("SignCertificate", json!({"csr": csr})).await;
        assert_eq!(answer["status"], "Rejected", "{csr}");
    }
    let (status, certs) = api(addr, "GET", "/api/piles/SEC-1/certificates", None).await;
    assert_eq!(status, 200);
    assert_eq!(certs["signed"].as_array().unwrap().len(), 2, "{certs}");
    let reasons: Vec<&str> = certs["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), refusals.len(), "{reasons:?}");
    for (_, why) in &refusals {
        assert!(
            reasons.iter().any(|r| r.contains(why)),
            "{why:?} in {reasons:?}"
        );
    }
    let (_, events) = api(addr, "GET", "/api/security-events", None).await;
    let own = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "SignCertificateRejected" && e["source"] == "central")
        .count();
    assert_eq!(own, refusals.len(), "{events}");
    assert!(pile.received.iter().all(|(a, _)| a != "CertificateSigned"));

    // The operator's renewal: ExtendedTriggerMessage SignChargePointCertificate.
    let renew =
        tokio::spawn(
            async move { api(addr, "POST", "/api/piles/SEC-1/certificate/renew", None).await },
        );
    let trigger = pile.until_call("ExtendedTriggerMessage").await;
    assert_eq!(
        trigger,
        json!({"requestedMessage": "SignChargePointCertificate"})
    );
    let (status, answer) = renew.await.unwrap();
    assert_eq!(
        (status, &answer["response"]["status"]),
        (200, &json!("Accepted"))
    );
    let (status, _) = api(addr, "POST", "/api/piles/NOBODY/certificate/renew", None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn csrs_are_signed_or_refused_on_sqlite() {
    csrs_signed_and_refused("security-sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csrs_are_signed_or_refused_on_postgres() {
    let db = common::database_url("security", "csrs");
    csrs_signed_and_refused("security-pg", Some(db)).await;
}

/// Security events: stored once (the same one sent again after a reconnect), listed newest
/// first, a page at a time; bad parameters answered 400, an unknown pile 404.
#[tokio::test(flavor = "multi_thread")]
async fn security_events_are_stored_once_and_listed() {
    let running = start(options("security-events", "n1")).await;
    let addr = running.local_addr;
    let older = json!({"type": "SettingSystemTime", "timestamp": "2026-12-01T10:00:00.000Z"});
    let newer = json!({"type": "FirmwareUpdated", "timestamp": "2026-12-01T11:00:00.000Z",
        "techInfo": "1.2.3"});
    for _ in 0..2 {
        let mut pile = Pile::connect(addr, "SEC-EV").await;
        for event in [&older, &newer] {
            let answer = pile.call("SecurityEventNotification", event.clone()).await;
            assert_eq!(answer, json!({}));
        }
        pile.ws.close(None).await.unwrap();
    }
    let (status, events) = api(addr, "GET", "/api/piles/SEC-EV/security-events", None).await;
    assert_eq!(status, 200);
    let listed: Vec<(&str, &str, Option<&str>)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["time"].as_str().unwrap(),
                e["tech_info"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("FirmwareUpdated", "2026-12-01T11:00:00.000Z", Some("1.2.3")),
            ("SettingSystemTime", "2026-12-01T10:00:00.000Z", None),
        ]
    );
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["source"] == "pile"));
    let (_, page) = api(addr, "GET", "/api/security-events?limit=1", None).await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["type"], "FirmwareUpdated");
    let (_, next) = api(
        addr,
        "GET",
        "/api/security-events?before=2026-12-01T11:00:00.000Z",
        None,
    )
    .await;
    assert_eq!(next.as_array().unwrap().len(), 1);
    assert_eq!(next[0]["type"], "SettingSystemTime");
    for (path, status) in [
        ("/api/security-events?limit=0", 400),
        ("/api/security-events?limit=1001", 400),
        ("/api/security-events?before=yesterday", 400),
        ("/api/security-events?limit=x", 400),
        ("/api/piles/SEC-EV/security-events?before=2026-12-01", 400),
        ("/api/piles/NOBODY/security-events", 404),
        ("/api/piles/NOBODY/certificates", 404),
    ] {
        let (got, answer) = api(addr, "GET", path, None).await;
        assert_eq!(got, status, "{path}: {answer}");
        assert!(answer["error"].is_string(), "{path}: {answer}");
    }
    // Shown on the pile's page.
    let page = reqwest::Client::new()
        .get(format!("http://{addr}/piles/SEC-EV"))
        .header("cookie", format!("ocpile_token={}", common::node::TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    let section = &html[html.find("Security events").expect("the section")..];
    assert!(
        section.contains("FirmwareUpdated") && section.contains("1.2.3"),
        "{section}"
    );
}
