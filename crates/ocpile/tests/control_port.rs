//! The pile's local control port, driven over HTTP while a central system of ours watches the
//! wire.

use std::path::PathBuf;
use std::sync::Arc;

use ocpp::{
    BootNotificationResponse, CallError, ChangeConfigurationRequest, CiString50,
    ConfigurationStatus, Decoded, GetConfigurationRequest, HeartbeatResponse, MessageTrigger,
    Policy, RegistrationStatus, Request, Response, StatusNotificationResponse, Timestamp,
    TriggerMessageRequest,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::timeout;
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};
use transport::{spawn_rpc, HandlerFuture, LinkConfig, RpcHandle};

mod common;

use common::{free_port, http, PileProcess, WAIT};

/// What the central system saw: boots (their payloads) and status notifications.
enum Seen {
    Boot(Value),
    Status(Value),
    Meter(Value),
}

fn central(seen: mpsc::UnboundedSender<Seen>) -> Arc<dyn transport::Handler> {
    Arc::new(move |request: Decoded<Request>| -> HandlerFuture {
        let seen = seen.clone();
        Box::pin(async move {
            let now = Timestamp::from_utc(chrono::Utc::now());
            match request.value {
                Request::BootNotification(b) => {
                    let _ = seen.send(Seen::Boot(serde_json::to_value(&b).unwrap()));
                    Ok(Response::BootNotification(BootNotificationResponse {
                        status: RegistrationStatus::Accepted,
                        current_time: now,
                        interval: 900,
                    }))
                }
                Request::StatusNotification(s) => {
                    let _ = seen.send(Seen::Status(serde_json::to_value(&s).unwrap()));
                    Ok(Response::StatusNotification(StatusNotificationResponse {}))
                }
                Request::Heartbeat(_) => {
                    Ok(Response::Heartbeat(HeartbeatResponse { current_time: now }))
                }
                Request::MeterValues(m) => {
                    let _ = seen.send(Seen::Meter(serde_json::to_value(&m).unwrap()));
                    Ok(Response::MeterValues(ocpp::MeterValuesResponse {}))
                }
                other => Err(CallError::not_supported(other.action().as_str())),
            }
        })
    })
}

struct Setup {
    server: WsServer,
    seen_tx: mpsc::UnboundedSender<Seen>,
    seen: mpsc::UnboundedReceiver<Seen>,
    control: String,
    _pile: PileProcess,
}

impl Setup {
    async fn start(name: &str, extra: &[&str]) -> Setup {
        let server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(AllowAll)))
            .await
            .unwrap();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let csms = format!("ws://{}/ocpp/", server.local_addr());
        let (pile, control) = common::start_pile_with_control(name, &csms, &state, extra);
        Setup {
            server,
            seen_tx,
            seen,
            control,
            _pile: pile,
        }
    }

    async fn next_pile(&mut self) -> RpcHandle {
        let accepted = timeout(WAIT, self.server.accept())
            .await
            .expect("the pile connects")
            .unwrap();
        spawn_rpc(
            accepted.ws,
            LinkConfig {
                policy: Policy::Lenient,
                ..LinkConfig::default()
            },
            central(self.seen_tx.clone()),
        )
    }

    async fn next_boot(&mut self) -> Value {
        loop {
            if let Seen::Boot(b) = timeout(WAIT, self.seen.recv())
                .await
                .expect("a boot")
                .unwrap()
            {
                return b;
            }
        }
    }

    /// The next StatusNotification for `connector`.
    async fn next_status(&mut self, connector: i64) -> Value {
        loop {
            if let Seen::Status(s) = timeout(WAIT, self.seen.recv())
                .await
                .expect("a status notification")
                .unwrap()
            {
                if s["connectorId"] == connector {
                    return s;
                }
            }
        }
    }

    async fn http(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        http(&self.control, method, path, body).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_plugs_network_and_local_configuration_through_the_control_port() {
    let mut s = Setup::start("CTRL1", &[]).await;
    let rpc = s.next_pile().await;
    let boot = s.next_boot().await;
    assert_eq!(boot["meterSerialNumber"], "CTRL1-M");
    assert_eq!(s.next_status(1).await["status"], "Available");

    // The simulated meter, sampled on request.
    let trigger = TriggerMessageRequest {
        requested_message: MessageTrigger::MeterValues,
        connector_id: Some(1),
    };
    assert_eq!(
        timeout(WAIT, rpc.call(&trigger))
            .await
            .unwrap()
            .unwrap()
            .value
            .status,
        ocpp::TriggerMessageStatus::Accepted
    );
    let meter = loop {
        if let Seen::Meter(m) = timeout(WAIT, s.seen.recv()).await.unwrap().unwrap() {
            break m;
        }
    };
    let samples = meter["meterValue"][0]["sampledValue"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(samples.len(), 10);
    assert!(samples
        .iter()
        .any(|v| v["measurand"] == "Voltage" && v["value"] == "230"));

    // FAQ 3.6: relay + CP error.
    let (code, body) = s
        .http(
            "POST",
            "/faults",
            Some(json!({"faults": ["relay_sticking", "cp_error"]})),
        )
        .await;
    assert_eq!(
        (code, body),
        (200, json!({"faults": ["cp_error", "relay_sticking"]}))
    );
    let status = s.next_status(1).await;
    assert_eq!(status["status"], "Faulted");
    assert_eq!(status["vendorErrorCode"], "0xC000");
    assert_eq!(status["errorCode"], "PowerSwitchFailure");
    let state = s.http("GET", "/state", None).await.1;
    assert_eq!(state["connectors"][0]["status"], "Faulted");
    assert_eq!(state["faults"], json!(["cp_error", "relay_sticking"]));
    assert_eq!(state["serial_number"], "CTRL1");
    assert_eq!(state["connection"]["connected"], true);
    assert_eq!(state["configuration"]["VendorChargePointName"], "CTRL1");
    assert_eq!(s.http("DELETE", "/faults", None).await.0, 200);
    assert_eq!(s.next_status(1).await["status"], "Available");
    assert_eq!(
        s.http("POST", "/faults", Some(json!({"faults": ["bogus"]})))
            .await
            .0,
        400
    );

    // Without plug-and-charge (FAQ 3.4), a plug without authorisation: Preparing.
    assert_eq!(
        s.http(
            "POST",
            "/config",
            Some(json!({"key": "VendorDirectWorkMode", "value": "false"}))
        )
        .await
        .1,
        json!({"status": "Accepted"})
    );
    assert_eq!(s.http("POST", "/connectors/1/plug", None).await.0, 200);
    assert_eq!(s.next_status(1).await["status"], "Preparing");
    assert_eq!(s.http("POST", "/connectors/1/unplug", None).await.0, 200);
    assert_eq!(s.next_status(1).await["status"], "Available");
    assert_eq!(s.http("POST", "/connectors/9/plug", None).await.0, 404);

    // FAQ 3.9: over 4G alone, a triggered boot carries ICCID and IMSI.
    let (code, _) = s.http("POST", "/network", Some(json!({"connectivity": "4G", "iccid": "89860000000000000042", "imsi": "460000000000042"}))).await;
    assert_eq!(code, 200);
    // The network change reaches the pile before the trigger does.
    let state = s.http("GET", "/state", None).await.1;
    assert_eq!(state["network"]["connectivity"], "4G");
    let trigger = TriggerMessageRequest {
        requested_message: MessageTrigger::BootNotification,
        connector_id: None,
    };
    timeout(WAIT, rpc.call(&trigger)).await.unwrap().unwrap();
    let boot = s.next_boot().await;
    assert_eq!(
        (boot["iccid"].as_str(), boot["imsi"].as_str()),
        (Some("89860000000000000042"), Some("460000000000042"))
    );

    // Local configuration follows ChangeConfiguration's rules, and the central sees it.
    assert_eq!(
        s.http(
            "POST",
            "/config",
            Some(json!({"key": "HeartbeatInterval", "value": "59"}))
        )
        .await
        .1,
        json!({"status": "Rejected"})
    );
    assert_eq!(
        s.http(
            "POST",
            "/config",
            Some(json!({"key": "MeterValueSampleInterval", "value": "42"}))
        )
        .await
        .1,
        json!({"status": "Accepted"})
    );
    let answer = timeout(
        WAIT,
        rpc.call(&GetConfigurationRequest {
            key: Some(vec![CiString50::new("MeterValueSampleInterval").unwrap()]),
        }),
    )
    .await
    .unwrap()
    .unwrap()
    .value;
    assert_eq!(
        answer.configuration_key.unwrap()[0].value.as_deref(),
        Some("42")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn local_configuration_recovers_a_pile_stranded_by_bad_server_settings() {
    // As on the real pile: no automatic fallback.
    let mut s = Setup::start("CTRL2", &["--settings-fallback", "0"]).await;
    let rpc = s.next_pile().await;
    s.next_boot().await;
    let good = format!(
        "WS,127.0.0.1,{},/ocpp/,ocpp1.6,,,",
        s.server.local_addr().port()
    );
    let dead = format!("WS,127.0.0.1,{},/ocpp/,ocpp1.6,,,", free_port());
    let req = ChangeConfigurationRequest {
        key: "VendorWebsocketSettings".try_into().unwrap(),
        value: dead.as_str().try_into().unwrap(),
    };
    assert_eq!(
        timeout(WAIT, rpc.call(&req))
            .await
            .unwrap()
            .unwrap()
            .value
            .status,
        ConfigurationStatus::Accepted
    );
    let state = s.http("GET", "/state", None).await.1;
    assert_eq!(
        state["configuration"]["VendorWebsocketSettings"],
        dead.as_str()
    );
    // On site, with the maintenance port: the right settings again.
    assert_eq!(
        s.http(
            "POST",
            "/config",
            Some(json!({"key": "VendorWebsocketSettings", "value": good}))
        )
        .await
        .1,
        json!({"status": "Accepted"})
    );
    let _rpc = s.next_pile().await;
    s.next_boot().await;
}
