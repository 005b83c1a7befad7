//! The central's CA given with `--ca-cert` and `--ca-key`, and its certificates taken by the
//! TLS listener: a pile signs in over wss without a client certificate, gets its CSR signed
//! (CertificateSigned), and connects again with that certificate; a certificate of another CA
//! fails the TLS handshake; a CA key that is not the certificate's stops the start.

mod common;

use std::time::Duration;

use common::pki::Pki;
use rcgen::{CertificateParams, DnType, KeyPair};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use transport::client::{connect, ClientConfig};
use transport::tls::{client_config, TlsVersion};
use transport::{Message, WsStream};

/// A wss connection of `identity` to the port, trusting `server_ca`, with a client
/// certificate (chain and key PEM) or none.
async fn wss(
    port: u16,
    identity: &str,
    server_ca: &str,
    client: Option<(&str, &str)>,
) -> Result<WsStream, transport::TransportError> {
    let tls = client_config(
        server_ca.as_bytes(),
        &[TlsVersion::Tls13, TlsVersion::Tls12],
        client.map(|(c, k)| (c.as_bytes(), k.as_bytes())),
    )
    .unwrap();
    let mut config = ClientConfig::new(format!("wss://localhost:{port}/ocpp/{identity}"));
    config.tls = Some(tls);
    config.resolve = vec![(
        "localhost".into(),
        port,
        format!("127.0.0.1:{port}").parse().unwrap(),
    )];
    connect(&config).await
}

/// Sends a CALL and returns its answer, answering the central's CALLs meanwhile (its
/// configuration read: no keys; CertificateSigned: Accepted, its chain kept in `chain`).
async fn call(
    ws: &mut WsStream,
    id: &str,
    action: &str,
    payload: Value,
    chain: &mut Option<String>,
) -> Value {
    ws.send(Message::text(json!([2, id, action, payload]).to_string()))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        let frame: Value = serde_json::from_str(t.as_str()).unwrap();
        if frame[0] == 3 && frame[1] == id {
            return frame[2].clone();
        }
        if frame[0] != 2 {
            continue;
        }
        let answer = match frame[2].as_str().unwrap() {
            "GetConfiguration" => json!({"configurationKey": []}),
            "CertificateSigned" => {
                *chain = frame[3]["certificateChain"].as_str().map(str::to_owned);
                json!({"status": "Accepted"})
            }
            other => panic!("unexpected {other}"),
        };
        ws.send(Message::text(json!([3, frame[1], answer]).to_string()))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pile_signed_by_the_given_ca_passes_the_tls_listener() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("security-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let server_pki = Pki::new();
    let central_ca = Pki::new();
    let (server_pem, server_key) = server_pki.issue(&["localhost"], None);
    for (name, text) in [
        ("server.pem", &server_pem),
        ("server.key", &server_key),
        ("ca.pem", &central_ca.ca_pem),
        ("ca.key", &central_ca.key_pem),
        ("other.key", &Pki::new().key_pem),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let mut options = central::Options::new(dir.join("data"));
    options.listen = "127.0.0.1:0".parse().unwrap();
    options.admission = central::Admission::Open;
    options.api_token = Some("T".into());
    options.tls_cert = Some(dir.join("server.pem"));
    options.tls_key = Some(dir.join("server.key"));
    options.ca_cert = Some(dir.join("ca.pem"));

    // A key that is not the CA certificate's, or no key: the start is refused.
    options.ca_key = Some(dir.join("other.key"));
    let err = central::server::start(options.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("not the certificate's"), "{err}");
    options.ca_key = None;
    let err = central::server::start(options.clone())
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("go together"), "{err}");

    options.ca_key = Some(dir.join("ca.key"));
    let running = central::server::start(options).await.unwrap();
    let port = running.local_addr.port();
    assert_eq!(
        running.central.ca().certificate_der(),
        &transport::tls::certificates_from_pem(central_ca.ca_pem.as_bytes()).unwrap()[0][..]
    );

    // Over wss without a client certificate: the CSR signed, the chain sent.
    let mut ws = wss(port, "TLS-SEC", &server_pki.ca_pem, None)
        .await
        .unwrap();
    let mut chain = None;
    let boot = json!({"chargePointVendor": "V", "chargePointModel": "M"});
    assert_eq!(
        call(&mut ws, "1", "BootNotification", boot, &mut chain).await["status"],
        "Accepted"
    );
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "TLS-SEC");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let answer = call(
        &mut ws,
        "2",
        "SignCertificate",
        json!({"csr": csr}),
        &mut chain,
    )
    .await;
    assert_eq!(answer["status"], "Accepted");
    while chain.is_none() {
        call(&mut ws, "3", "Heartbeat", json!({}), &mut chain).await;
    }
    let chain = chain.unwrap();
    assert!(chain.ends_with(&central_ca.ca_pem), "{chain}");
    ws.close(None).await.unwrap();

    // With the certificate the central signed: the TLS listener takes it.
    let key_pem = key.serialize_pem();
    let mut ws = wss(
        port,
        "TLS-SEC",
        &server_pki.ca_pem,
        Some((&chain, &key_pem)),
    )
    .await
    .expect("the certificate of the central's CA is taken");
    let mut none = None;
    let beat = call(&mut ws, "4", "Heartbeat", json!({}), &mut none).await;
    assert!(beat["currentTime"].is_string(), "{beat}");

    // A certificate of another CA fails the TLS handshake.
    let (other_cert, other_key) = Pki::new().issue(&[], Some("TLS-SEC"));
    assert!(wss(
        port,
        "TLS-SEC",
        &server_pki.ca_pem,
        Some((&other_cert, &other_key))
    )
    .await
    .is_err());
}
