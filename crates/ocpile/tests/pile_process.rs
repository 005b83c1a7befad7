//! The real `ocpile pile` process against a test central system of ours.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::time::timeout;
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};

mod common;

use common::wire::{accept, Wire};
use common::{start_pile, state_dir, WAIT};

/// The tests' central system (it answers everything), and how many boots were taken.
struct Central {
    server: WsServer,
    wire: Wire,
    boots: usize,
}

impl Central {
    async fn start() -> Central {
        let server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(AllowAll)))
            .await
            .unwrap();
        Central::on(server)
    }

    fn on(server: WsServer) -> Central {
        Central {
            server,
            wire: Wire::default(),
            boots: 0,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ocpp/", self.server.local_addr())
    }

    /// Waits for the next connection and its boot; the identity and the wire.
    async fn next_pile(&mut self) -> (String, Wire) {
        let identity = accept(&mut self.server, &self.wire).await;
        self.wire
            .next_call("BootNotification", &mut self.boots)
            .await;
        (identity, self.wire.clone())
    }
}

/// ChangeConfiguration; the status.
async fn change(wire: &Wire, key: &str, value: &str) -> String {
    let answer = wire
        .ask("ChangeConfiguration", json!({"key": key, "value": value}))
        .await;
    answer["status"].as_str().unwrap().to_owned()
}

async fn reset(wire: &Wire, kind: &str) -> String {
    let answer = wire.ask("Reset", json!({"type": kind})).await;
    answer["status"].as_str().unwrap().to_owned()
}

async fn get(wire: &Wire, key: &str) -> Option<String> {
    let answer = wire.ask("GetConfiguration", json!({"key": [key]})).await;
    answer["configurationKey"][0]["value"]
        .as_str()
        .map(str::to_owned)
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
        "Accepted"
    );
    assert_eq!(
        change(&rpc, "VendorChargeBoxId", "ALIAS-9").await,
        "Accepted"
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
        "Accepted"
    );
    let (identity, rpc) = central.next_pile().await;
    assert_eq!(
        identity, "RENAMED",
        "the new name is the identity in the URL"
    );

    // A malformed VendorWebsocketSettings is refused and changes nothing.
    assert_eq!(
        change(&rpc, "VendorWebsocketSettings", "WS,host,80,/ocpp/").await,
        "Rejected"
    );

    let port = other.server.local_addr().port();
    let settings = format!("WS,127.0.0.1,{port},/other/,ocpp1.6,,,");
    assert_eq!(
        change(&rpc, "VendorWebsocketSettings", &settings).await,
        "Accepted"
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
        "Accepted"
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
        "Accepted"
    );
    assert_eq!(reset(&rpc, "Hard").await, "Accepted");
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
    // The state cannot be read back while the reset runs; it comes back within the retries
    // (ResetRetries 3, 2 s apart): the pile boots again. (The reset writes the state file,
    // its ResetOrReboot security event in it, so the outbox journal, which it does not write
    // while the outbox is empty, is what cannot be read: a directory in its place.)
    let journal = state.join("outbox.log");
    let unreadable = |journal: &std::path::Path| {
        let _ = std::fs::remove_file(journal);
        std::fs::create_dir(journal).unwrap();
    };
    unreadable(&journal);
    assert_eq!(reset(&rpc, "Soft").await, "Accepted");
    // The first attempt fails (the pile says so); the state comes back before the retry.
    let line = common::logged(&mut log, "reset failed").await;
    assert!(line.contains("retry 1 of 3"), "{line}");
    std::fs::remove_dir(&journal).unwrap();
    let (_, rpc) = central.next_pile().await;
    assert_eq!(get(&rpc, "ResetRetries").await.as_deref(), Some("3"));
    // With ResetRetries 0 the first failure ends the process, with an error.
    assert_eq!(change(&rpc, "ResetRetries", "0").await, "Accepted");
    unreadable(&journal);
    assert_eq!(reset(&rpc, "Soft").await, "Accepted");
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
    let mut central = Central::on(server);
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
