//! Our websocket client and server: BootNotification round trips over ws:// and wss:// with
//! Basic auth, and every refusal a charge point can meet.

use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use ocpp::rpc::CallFailure;
use ocpp::{
    BootNotificationRequest, BootNotificationResponse, CallError, CallErrorCode, CiString20,
    DataTransferRequest, Decoded, RegistrationStatus, Request, Response, Timestamp,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use transport::auth::StaticPasswords;
use transport::client::{connect, ClientConfig};
use transport::server::{ServerConfig, WsServer};
use transport::tls::{client_config, server_config, TlsVersion};
use transport::{
    spawn_rpc, CloseReason, HandlerFuture, LinkConfig, RpcError, RpcHandle, TransportError,
};

struct Pki {
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The central system side of the test: accepts BootNotification, refuses DataTransfer.
fn central_handler() -> Arc<dyn transport::Handler> {
    Arc::new(|request: Decoded<Request>| -> HandlerFuture {
        Box::pin(async move {
            match request.value {
                Request::BootNotification(_) => {
                    Ok(Response::BootNotification(BootNotificationResponse {
                        status: RegistrationStatus::Accepted,
                        current_time: Timestamp::from_millis(1_795_000_000_000).unwrap(),
                        interval: 300,
                    }))
                }
                other => Err(CallError::not_supported(other.action().as_str())),
            }
        })
    })
}

fn pile_handler() -> Arc<dyn transport::Handler> {
    Arc::new(|request: Decoded<Request>| -> HandlerFuture {
        Box::pin(async move { Err(CallError::not_supported(request.value.action().as_str())) })
    })
}

async fn server(tls: Option<Arc<rustls::ServerConfig>>) -> WsServer {
    let auth = Arc::new(
        StaticPasswords::new()
            .with("CP 1", "s3cret")
            .with("CP2", "other"),
    );
    let mut config = ServerConfig::new(auth);
    config.tls = tls;
    WsServer::bind("127.0.0.1:0", config).await.unwrap()
}

/// Runs the server's accept loop: every connection gets the central handler.
fn serve(mut server: WsServer) -> tokio::sync::mpsc::UnboundedReceiver<(String, RpcHandle)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(accepted) = server.accept().await {
            let handle = spawn_rpc(
                accepted.ws,
                LinkConfig {
                    policy: ocpp::Policy::Lenient,
                    ..LinkConfig::default()
                },
                central_handler(),
            );
            let _ = tx.send((accepted.identity, handle));
        }
    });
    rx
}

fn boot() -> BootNotificationRequest {
    BootNotificationRequest {
        charge_point_vendor: CiString20::new("Vendor").unwrap(),
        charge_point_model: CiString20::new("M3G3").unwrap(),
        charge_point_serial_number: None,
        charge_box_serial_number: None,
        firmware_version: None,
        iccid: None,
        imsi: None,
        meter_type: None,
        meter_serial_number: None,
    }
}

async fn boot_round_trip(
    url: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    mut accepted: tokio::sync::mpsc::UnboundedReceiver<(String, RpcHandle)>,
) {
    let mut config = ClientConfig::new(url);
    config.basic = Some(("CP 1".into(), b"s3cret".to_vec()));
    config.tls = tls;
    let ws = connect(&config).await.expect("connects");
    let pile = spawn_rpc(ws, LinkConfig::default(), pile_handler());
    let answer = pile.call(&boot()).await.expect("boot answered");
    assert_eq!(answer.value.status, RegistrationStatus::Accepted);
    assert_eq!(answer.value.interval, 300);
    let (identity, _central) = accepted.recv().await.unwrap();
    assert_eq!(
        identity, "CP 1",
        "identity is the percent-decoded last path segment"
    );

    // A handler's refusal reaches the caller as the right CALLERROR.
    let dt = DataTransferRequest {
        vendor_id: "x".try_into().unwrap(),
        message_id: None,
        data: None,
    };
    match pile.call(&dt).await {
        Err(RpcError::Call(CallFailure::CallError(e))) => {
            assert_eq!(e.code, CallErrorCode::NotSupported)
        }
        other => panic!("{other:?}"),
    }
    pile.close();
    assert_eq!(pile.closed().await, CloseReason::Local);
}

#[tokio::test]
async fn boot_over_ws_with_basic_auth() {
    let server = server(None).await;
    let url = format!("ws://{}/ocpp/CP%201", server.local_addr());
    boot_round_trip(url, None, serve(server)).await;
}

#[tokio::test]
async fn boot_over_wss_with_basic_auth() {
    let pki = pki();
    let tls = server_config(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes(), None).unwrap();
    let server = server(Some(tls)).await;
    let url = format!("wss://localhost:{}/ocpp/CP%201", server.local_addr().port());
    let client_tls = client_config(
        pki.ca_pem.as_bytes(),
        &[TlsVersion::Tls12, TlsVersion::Tls13],
        None,
    )
    .unwrap();
    boot_round_trip(url, Some(client_tls), serve(server)).await;
}

#[tokio::test]
async fn wss_with_each_tls_version() {
    let pki = pki();
    let tls = server_config(pki.chain_pem.as_bytes(), pki.key_pem.as_bytes(), None).unwrap();
    let server = server(Some(tls)).await;
    let url = format!("wss://localhost:{}/ocpp/CP%201", server.local_addr().port());
    let _accepted = serve(server);
    for version in [TlsVersion::Tls12, TlsVersion::Tls13] {
        let mut config = ClientConfig::new(url.clone());
        config.basic = Some(("CP 1".into(), b"s3cret".to_vec()));
        config.tls = Some(client_config(pki.ca_pem.as_bytes(), &[version], None).unwrap());
        let pile = spawn_rpc(
            connect(&config).await.expect("connects"),
            LinkConfig::default(),
            pile_handler(),
        );
        assert_eq!(
            pile.call(&boot()).await.unwrap().value.status,
            RegistrationStatus::Accepted,
            "{version:?}"
        );
        pile.close();
    }
}

#[tokio::test]
async fn wss_refuses_a_server_the_ca_does_not_vouch_for() {
    let (trusted, other) = (pki(), pki());
    let tls = server_config(other.chain_pem.as_bytes(), other.key_pem.as_bytes(), None).unwrap();
    let server = server(Some(tls)).await;
    let mut config = ClientConfig::new(format!(
        "wss://localhost:{}/ocpp/CP%201",
        server.local_addr().port()
    ));
    config.basic = Some(("CP 1".into(), b"s3cret".to_vec()));
    config.tls = Some(
        client_config(
            trusted.ca_pem.as_bytes(),
            &[TlsVersion::Tls12, TlsVersion::Tls13],
            None,
        )
        .unwrap(),
    );
    let _accepted = serve(server);
    match connect(&config).await {
        Err(TransportError::Io(e)) => assert!(e.to_string().contains("certificate"), "{e}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("connected to an untrusted server"),
    }
    // wss:// without any CA is an error, never an unverified connection.
    config.tls = None;
    assert!(matches!(
        connect(&config).await,
        Err(TransportError::Tls(_))
    ));
}

async fn refused(url: String, basic: Option<(&str, &[u8])>) -> u16 {
    let mut config = ClientConfig::new(url);
    config.basic = basic.map(|(u, p)| (u.to_owned(), p.to_vec()));
    match connect(&config).await {
        Err(TransportError::Refused { status, .. }) => status,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_refused() {
    let server = server(None).await;
    let base = format!("ws://{}/ocpp", server.local_addr());
    let _accepted = serve(server);
    assert_eq!(
        refused(format!("{base}/CP%201"), Some(("CP 1", b"wrong"))).await,
        401
    );
    assert_eq!(refused(format!("{base}/CP%201"), None).await, 401);
    assert_eq!(
        refused(format!("{base}/CP%201"), Some(("CP2", b"other"))).await,
        401,
        "the user must be the identity"
    );
    assert_eq!(
        refused(format!("{base}/CP9"), Some(("CP9", b"x"))).await,
        403
    );
    assert_eq!(
        refused(format!("{base}/"), None).await,
        404,
        "no identity in the path"
    );
    assert_eq!(refused(format!("{base}/a%2Fb"), None).await, 404);
}

#[tokio::test]
async fn a_handshake_without_the_subprotocol_is_refused() {
    let server = server(None).await;
    let addr = server.local_addr();
    let _accepted = serve(server);
    let mut request = format!("ws://{addr}/ocpp/CP%201")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Authorization",
        transport::auth::basic_header("CP 1", b"s3cret")
            .parse()
            .unwrap(),
    );
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(request, tcp).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 400),
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn an_oversized_message_closes_the_connection() {
    let server = server(None).await;
    let url = format!("ws://{}/ocpp/CP%201", server.local_addr());
    let mut accepted = serve(server);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().unwrap());
    request.headers_mut().insert(
        "Authorization",
        transport::auth::basic_header("CP 1", b"s3cret")
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let (_, central) = accepted.recv().await.unwrap();
    let big = format!(
        r#"[2,"1","DataTransfer",{{"vendorId":"x","data":"{}"}}]"#,
        "x".repeat(70 * 1024)
    );
    let _ = ws.send(Message::text(big)).await;
    let reason = tokio::time::timeout(Duration::from_secs(10), central.closed())
        .await
        .expect("closes");
    assert_eq!(reason, CloseReason::MessageTooBig);
}

#[tokio::test]
// The handshake callback's error type is tungstenite's HTTP response.
#[allow(clippy::result_large_err)]
async fn a_peer_that_never_answers_pings_is_closed() {
    // A server that completes the handshake and then never reads again.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let cb =
            |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
             mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().unwrap());
                Ok(resp)
            };
        let ws = tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(ws);
    });
    let ws = connect(&ClientConfig::new(format!("ws://{addr}/ocpp/CP1")))
        .await
        .unwrap();
    let link = LinkConfig {
        ping_interval: Some(Duration::from_millis(100)),
        pong_timeout: Duration::from_millis(300),
        ..LinkConfig::default()
    };
    let pile = spawn_rpc(ws, link, pile_handler());
    let reason = tokio::time::timeout(Duration::from_secs(10), pile.closed())
        .await
        .expect("closes");
    assert_eq!(reason, CloseReason::PongTimeout);
    // Calls on a closed connection fail at once.
    assert_eq!(pile.call(&boot()).await.unwrap_err(), RpcError::Closed);
}

#[tokio::test]
// The handshake callback's error type is tungstenite's HTTP response.
#[allow(clippy::result_large_err)]
async fn a_peer_that_sends_frames_but_never_pongs_stays_connected() {
    // A server that never reads (so it never answers a ping) but writes a frame every 50 ms.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let cb =
            |_: &tokio_tungstenite::tungstenite::handshake::server::Request,
             mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", "ocpp1.6".parse().unwrap());
                Ok(resp)
            };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap();
        loop {
            let stray = Message::text(r#"[3,"nobody-asked",{}]"#);
            if ws.send(stray).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let ws = connect(&ClientConfig::new(format!("ws://{addr}/ocpp/CP1")))
        .await
        .unwrap();
    let link = LinkConfig {
        ping_interval: Some(Duration::from_millis(100)),
        pong_timeout: Duration::from_millis(300),
        ..LinkConfig::default()
    };
    let pile = spawn_rpc(ws, link, pile_handler());
    // Many pong timeouts pass without a pong; the frames show the link alive.
    assert!(
        tokio::time::timeout(Duration::from_millis(1500), pile.closed())
            .await
            .is_err(),
        "closed: {:?}",
        pile.closed().await
    );
}

#[tokio::test]
async fn pings_answered_keep_the_link_open() {
    let server = server(None).await;
    let url = format!("ws://{}/ocpp/CP%201", server.local_addr());
    let _accepted = serve(server);
    let mut config = ClientConfig::new(url);
    config.basic = Some(("CP 1".into(), b"s3cret".to_vec()));
    let link = LinkConfig {
        ping_interval: Some(Duration::from_millis(50)),
        pong_timeout: Duration::from_millis(500),
        ..LinkConfig::default()
    };
    let pile = spawn_rpc(connect(&config).await.unwrap(), link, pile_handler());
    // Ten ping periods pass and the link stays open, because the central answers every ping.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), pile.closed())
            .await
            .is_err(),
        "closed: {:?}",
        pile.closed().await
    );
    assert_eq!(
        pile.call(&boot()).await.unwrap().value.status,
        RegistrationStatus::Accepted
    );
}
