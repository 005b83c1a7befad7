//! The real `ocpile pile` process against a test central system of ours.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ocpp::{
    BootNotificationResponse, CallError, ChangeConfigurationRequest, CiString50,
    ConfigurationStatus, Decoded, GetConfigurationRequest, HeartbeatResponse, Policy,
    RegistrationStatus, Request, Response, StatusNotificationResponse, Timestamp,
};
use tokio::sync::mpsc;
use tokio::time::timeout;
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};
use transport::{spawn_rpc, HandlerFuture, LinkConfig, RpcHandle};

mod common;

use common::{start_pile, state_dir, WAIT};

/// A central system that accepts every boot and reports each one.
fn central(boots: mpsc::UnboundedSender<String>) -> Arc<dyn transport::Handler> {
    Arc::new(move |request: Decoded<Request>| -> HandlerFuture {
        let boots = boots.clone();
        Box::pin(async move {
            let now = Timestamp::from_utc(chrono::Utc::now());
            match request.value {
                Request::BootNotification(b) => {
                    let _ = boots.send(
                        b.charge_point_serial_number
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                    );
                    Ok(Response::BootNotification(BootNotificationResponse {
                        status: RegistrationStatus::Accepted,
                        current_time: now,
                        interval: 900,
                    }))
                }
                Request::StatusNotification(_) => {
                    Ok(Response::StatusNotification(StatusNotificationResponse {}))
                }
                Request::Heartbeat(_) => {
                    Ok(Response::Heartbeat(HeartbeatResponse { current_time: now }))
                }
                other => Err(CallError::not_supported(other.action().as_str())),
            }
        })
    })
}

struct Central {
    server: WsServer,
    boots_tx: mpsc::UnboundedSender<String>,
    boots: mpsc::UnboundedReceiver<String>,
}

impl Central {
    async fn start() -> Central {
        let server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(AllowAll)))
            .await
            .unwrap();
        let (boots_tx, boots) = mpsc::unbounded_channel();
        Central {
            server,
            boots_tx,
            boots,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ocpp/", self.server.local_addr())
    }

    /// Waits for the next connection and its accepted boot.
    async fn next_pile(&mut self) -> (String, RpcHandle) {
        let accepted = timeout(WAIT, self.server.accept())
            .await
            .expect("the pile connects")
            .unwrap();
        let rpc = spawn_rpc(
            accepted.ws,
            LinkConfig {
                policy: Policy::Lenient,
                ..LinkConfig::default()
            },
            central(self.boots_tx.clone()),
        );
        timeout(WAIT, self.boots.recv())
            .await
            .expect("the pile boots");
        (accepted.identity, rpc)
    }
}

async fn change(rpc: &RpcHandle, key: &str, value: &str) -> ConfigurationStatus {
    let req = ChangeConfigurationRequest {
        key: key.try_into().unwrap(),
        value: value.try_into().unwrap(),
    };
    timeout(WAIT, rpc.call(&req))
        .await
        .unwrap()
        .unwrap()
        .value
        .status
}

async fn reset(rpc: &RpcHandle, kind: ocpp::ResetType) -> ocpp::ResetStatus {
    let req = ocpp::ResetRequest { kind };
    timeout(WAIT, rpc.call(&req))
        .await
        .unwrap()
        .unwrap()
        .value
        .status
}

async fn get(rpc: &RpcHandle, key: &str) -> Option<String> {
    let req = GetConfigurationRequest {
        key: Some(vec![CiString50::new(key).unwrap()]),
    };
    let answer = timeout(WAIT, rpc.call(&req)).await.unwrap().unwrap().value;
    answer
        .configuration_key?
        .into_iter()
        .next()?
        .value
        .map(|v| v.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_right_after_an_accepted_change_keeps_the_new_value() {
    let mut central = Central::start().await;
    let state = state_dir("kill");
    let mut pile = start_pile("KILL1", &central.url(), &state, &[]);
    let (identity, rpc) = central.next_pile().await;
    assert_eq!(identity, "KILL1");
    assert_eq!(
        change(&rpc, "MeterValueSampleInterval", "1234").await,
        ConfigurationStatus::Accepted
    );
    assert_eq!(
        change(&rpc, "VendorChargeBoxId", "ALIAS-9").await,
        ConfigurationStatus::Accepted
    );
    // SIGKILL, at once.
    pile.0.kill().unwrap();
    pile.0.wait().unwrap();

    let _pile = start_pile("KILL1", &central.url(), &state, &[]);
    let (_, rpc) = central.next_pile().await;
    assert_eq!(
        get(&rpc, "MeterValueSampleInterval").await.as_deref(),
        Some("1234")
    );
    assert_eq!(
        get(&rpc, "VendorChargeBoxId").await.as_deref(),
        Some("ALIAS-9")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_name_or_server_makes_the_pile_reconnect_there() {
    let mut central = Central::start().await;
    let mut other = Central::start().await;
    let state = state_dir("rename");
    let _pile = start_pile("SN-R1", &central.url(), &state, &[]);
    let (identity, rpc) = central.next_pile().await;
    assert_eq!(identity, "SN-R1");

    assert_eq!(
        change(&rpc, "VendorChargePointName", "RENAMED").await,
        ConfigurationStatus::Accepted
    );
    let (identity, rpc) = central.next_pile().await;
    assert_eq!(
        identity, "RENAMED",
        "the new name is the identity in the URL"
    );

    // A malformed VendorWebsocketSettings is refused and changes nothing.
    assert_eq!(
        change(&rpc, "VendorWebsocketSettings", "WS,host,80,/ocpp/").await,
        ConfigurationStatus::Rejected
    );

    let port = other.server.local_addr().port();
    let settings = format!("WS,127.0.0.1,{port},/other/,ocpp1.6,,,");
    assert_eq!(
        change(&rpc, "VendorWebsocketSettings", &settings).await,
        ConfigurationStatus::Accepted
    );
    let (identity, rpc) = other.next_pile().await;
    assert_eq!(identity, "RENAMED");
    assert_eq!(
        get(&rpc, "VendorWebsocketSettings").await,
        Some(format!("WS,127.0.0.1,{port},/other/,ocpp1.6,,,"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_settings_fall_back_to_the_last_server_that_worked() {
    let mut central = Central::start().await;
    let state = state_dir("fallback");
    let _pile = start_pile(
        "SN-F1",
        &central.url(),
        &state,
        &["--settings-fallback", "3"],
    );
    let (_, rpc) = central.next_pile().await;
    // Port 9 on loopback: nothing listens there.
    assert_eq!(
        change(
            &rpc,
            "VendorWebsocketSettings",
            "WS,127.0.0.1,9,/ocpp/,ocpp1.6,,,"
        )
        .await,
        ConfigurationStatus::Accepted
    );
    let (identity, rpc) = central.next_pile().await;
    assert_eq!(identity, "SN-F1");
    assert_eq!(
        get(&rpc, "VendorWebsocketSettings").await,
        Some(format!(
            "WS,127.0.0.1,{},/ocpp/,ocpp1.6,,,",
            central.server.local_addr().port()
        ))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_restarts_the_pile_which_boots_again_with_its_state() {
    let mut central = Central::start().await;
    let state = state_dir("reset");
    let _pile = start_pile("SN-RST", &central.url(), &state, &[]);
    let (_, rpc) = central.next_pile().await;
    assert_eq!(
        change(&rpc, "MeterValueSampleInterval", "77").await,
        ConfigurationStatus::Accepted
    );
    assert_eq!(
        reset(&rpc, ocpp::ResetType::Hard).await,
        ocpp::ResetStatus::Accepted
    );
    let (identity, rpc) = central.next_pile().await;
    assert_eq!(identity, "SN-RST");
    assert_eq!(
        get(&rpc, "MeterValueSampleInterval").await.as_deref(),
        Some("77")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_that_cannot_reload_the_state_is_retried_reset_retries_times() {
    let mut central = Central::start().await;
    let state = state_dir("reset-retries");
    let (mut pile, mut log) = common::start_pile_logged("SN-RR", &central.url(), &state, &[]);
    let (_, rpc) = central.next_pile().await;
    // Answered after the boot's answer was taken in (and what it changed saved).
    assert_eq!(get(&rpc, "ResetRetries").await.as_deref(), Some("3"));
    // The state file cannot be read back while the reset runs; it comes back within the
    // retries (ResetRetries 3, 2 s apart): the pile boots again.
    let file = state.join("state.json");
    let good = std::fs::read(&file).unwrap();
    std::fs::write(&file, b"{ not json").unwrap();
    assert_eq!(
        reset(&rpc, ocpp::ResetType::Soft).await,
        ocpp::ResetStatus::Accepted
    );
    // The first attempt fails (the pile says so); the state comes back before the retry.
    let line = common::logged(&mut log, "reset failed").await;
    assert!(line.contains("retry 1 of 3"), "{line}");
    std::fs::write(&file, &good).unwrap();
    let (_, rpc) = central.next_pile().await;
    assert_eq!(get(&rpc, "ResetRetries").await.as_deref(), Some("3"));
    // With ResetRetries 0 the first failure ends the process, with an error.
    assert_eq!(
        change(&rpc, "ResetRetries", "0").await,
        ConfigurationStatus::Accepted
    );
    std::fs::write(&file, b"{ not json").unwrap();
    assert_eq!(
        reset(&rpc, ocpp::ResetType::Soft).await,
        ocpp::ResetStatus::Accepted
    );
    let status = timeout(WAIT, async {
        loop {
            if let Some(status) = pile.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the pile gives up");
    assert!(!status.success());
}

/// A CA and a certificate for 127.0.0.1/localhost signed by it, as PEM.
fn test_pki(dir: &std::path::Path) -> (PathBuf, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (ca_file, cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread")]
async fn both_models_connect_over_tls_with_basic_auth_and_refuse_an_untrusted_server() {
    let dir = state_dir("tls");
    let (ca_file, chain, key) = test_pki(&dir);
    let tls = transport::tls::server_config(chain.as_bytes(), key.as_bytes(), None).unwrap();
    let auth = Arc::new(
        transport::auth::StaticPasswords::new()
            .with("TLS-G2", "pw-g2")
            .with("TLS-G3", "pw-g3"),
    );
    let mut config = ServerConfig::new(auth);
    config.tls = Some(tls);
    let server = WsServer::bind("127.0.0.1:0", config).await.unwrap();
    let (boots_tx, boots) = mpsc::unbounded_channel();
    let mut central = Central {
        server,
        boots_tx,
        boots,
    };
    let url = format!(
        "wss://localhost:{}/ocpp/",
        central.server.local_addr().port()
    );
    let ca = ca_file.to_str().unwrap();
    for (id, model, password) in [("TLS-G2", "m3g2", "pw-g2"), ("TLS-G3", "m3g3", "pw-g3")] {
        let _pile = start_pile(
            id,
            &url,
            &dir.join(id),
            &["--ca", ca, "--model", model, "--password", password],
        );
        let (identity, rpc) = central.next_pile().await;
        assert_eq!(identity, id);
        assert_eq!(
            get(&rpc, "VendorWebsocketSettings").await,
            Some(format!(
                "WS,localhost,{},/ocpp/,socpp1.6,,{password},",
                central.server.local_addr().port()
            ))
        );
    }

    // A pile that trusts another CA never connects.
    let other = state_dir("tls-other");
    let (other_ca, _, _) = test_pki(&other);
    let _pile = start_pile(
        "TLS-G3",
        &url,
        &other.join("pile"),
        &["--ca", other_ca.to_str().unwrap(), "--password", "pw-g3"],
    );
    assert!(
        timeout(Duration::from_secs(3), central.server.accept())
            .await
            .is_err(),
        "connected to an untrusted server"
    );
}
