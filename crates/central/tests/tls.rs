//! Security Profiles 2 and 3: the central system over TLS, piles presenting a client
//! certificate whose subject CN must be their identity.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use transport::client::{connect, ClientConfig};
use transport::tls::{client_config, TlsVersion};
use transport::Message;

use common::pki::Pki;

mod common;

#[test]
fn the_subject_cn_is_read_from_a_certificate() {
    let pki = Pki::new();
    let (pem, _) = pki.issue(&[], Some("CP-0042"));
    let der = transport::tls::certificates_from_pem(pem.as_bytes()).unwrap();
    assert_eq!(
        central::secrets::subject_common_name(&der[0]).as_deref(),
        Some("CP-0042")
    );
    let (pem, _) = pki.issue(&["localhost"], None);
    let der = transport::tls::certificates_from_pem(pem.as_bytes()).unwrap();
    assert_eq!(central::secrets::subject_common_name(&der[0]), None);
    assert_eq!(
        central::secrets::subject_common_name(b"\x30\x82garbage"),
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_3_admits_the_pile_whose_certificate_names_it() {
    let pki = Pki::new();
    let running = central::server::start(pki.tls_options("tls"))
        .await
        .unwrap();
    let port = running.local_addr.port();

    let attempt = |cn: Option<&'static str>, identity: &'static str| {
        let (cert, key) = match cn {
            Some(cn) => {
                let (c, k) = pki.issue(&[], Some(cn));
                (Some(c), Some(k))
            }
            None => (None, None),
        };
        let ca = pki.ca_pem.clone();
        async move {
            let identity_pair = cert
                .as_ref()
                .map(|c| (c.as_bytes(), key.as_ref().unwrap().as_bytes()));
            let tls = client_config(
                ca.as_bytes(),
                &[TlsVersion::Tls13, TlsVersion::Tls12],
                identity_pair,
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
    };

    let mut ws = attempt(Some("TLS-PILE"), "TLS-PILE")
        .await
        .expect("the named pile connects");
    ws.send(Message::text(r#"[2,"1","Heartbeat",{}]"#))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        answer.to_text().unwrap().starts_with(r#"[3,"1","#),
        "{answer:?}"
    );

    let err = attempt(Some("SOMEONE-ELSE"), "TLS-PILE")
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("403"), "{err}");
    let err = attempt(None, "TLS-PILE").await.err().expect("refused");
    assert!(err.to_string().contains("403"), "{err}");
    // A pile that does not trust our CA fails the TLS handshake: listed too, status 0.
    let other = Pki::new();
    let tls = client_config(other.ca_pem.as_bytes(), &[TlsVersion::Tls13], None).unwrap();
    let mut config = ClientConfig::new(format!("wss://localhost:{port}/ocpp/TLS-PILE"));
    config.tls = Some(tls);
    config.resolve = vec![(
        "localhost".into(),
        port,
        format!("127.0.0.1:{port}").parse().unwrap(),
    )];
    assert!(connect(&config).await.is_err());
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let r = running.central.repo().refused(10).await.unwrap();
            if r.len() == 3 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("three refusals");
    assert_eq!(refused[0].http_status, 0);
    assert!(
        refused[0].reason.starts_with("TLS handshake failed"),
        "{:?}",
        refused[0]
    );
    let refused = &refused[1..];
    // The pile connected with its certificate (profile 3): one without is refused since.
    assert!(
        refused[0].reason.starts_with(
            "no client certificate with a subject CN (it connected with security profile 3 before"
        ),
        "{:?}",
        refused[0]
    );
    assert!(
        refused[1].reason.contains("SOMEONE-ELSE"),
        "{:?}",
        refused[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_handshake_that_stalls_is_closed_at_the_handshake_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = Pki::new();
    let mut options = pki.tls_options("tls-stall");
    options.handshake_timeout = Duration::from_secs(1);
    options.node = "tls".into();
    let running = central::server::start(options).await.unwrap();
    // The first bytes of a ClientHello, then nothing.
    let mut tcp = tokio::net::TcpStream::connect(running.local_addr)
        .await
        .unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let opened = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
        .await
        .expect("closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
    let after = opened.elapsed();
    assert!(
        after >= Duration::from_millis(800) && after < Duration::from_secs(4),
        "closed after {after:?}"
    );
    let refused = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let r = running.central.repo().refused(10).await.unwrap();
            if !r.is_empty() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("recorded");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].http_status, 0);
    assert!(
        refused[0].reason.contains("handshake timeout (1 s)"),
        "{:?}",
        refused[0]
    );
    let metrics = running.central.metrics().encode();
    assert!(
        metrics.contains(
            "ocpile_refused_handshakes_total{node=\"tls\",reason=\"handshake_timeout\"} 1"
        ),
        "{metrics}"
    );
}
