//! The pile's local control port, driven over HTTP while a central system of ours watches the
//! wire.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};

mod common;

use common::wire::{accept, Wire};
use common::{http, PileProcess};

/// One pile, its control port, and the tests' central system with how much of each kind of
/// CALL the test has taken.
struct Setup {
    server: WsServer,
    wire: Wire,
    boots: usize,
    statuses: usize,
    meters: usize,
    control: String,
    _pile: PileProcess,
}

impl Setup {
    async fn start(name: &str, extra: &[&str]) -> Setup {
        let server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(AllowAll)))
            .await
            .unwrap();
        let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let csms = format!("ws://{}/ocpp/", server.local_addr());
        let (pile, control) = common::start_pile_with_control(name, &csms, &state, extra);
        Setup {
            server,
            wire: Wire::default(),
            boots: 0,
            statuses: 0,
            meters: 0,
            control,
            _pile: pile,
        }
    }

    /// Serves the pile's next connection.
    async fn next_pile(&mut self) -> Wire {
        accept(&mut self.server, &self.wire).await;
        self.wire.clone()
    }

    async fn next_boot(&mut self) -> Value {
        self.wire
            .next_call("BootNotification", &mut self.boots)
            .await
            .payload
    }

    /// The next StatusNotification for `connector`.
    async fn next_status(&mut self, connector: i64) -> Value {
        loop {
            let s = self
                .wire
                .next_call("StatusNotification", &mut self.statuses)
                .await
                .payload;
            if s["connectorId"] == connector {
                return s;
            }
        }
    }

    async fn next_meter(&mut self) -> Value {
        self.wire
            .next_call("MeterValues", &mut self.meters)
            .await
            .payload
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
    let answer = rpc
        .ask(
            "TriggerMessage",
            json!({"requestedMessage": "MeterValues", "connectorId": 1}),
        )
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
    let meter = s.next_meter().await;
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
    rpc.ask(
        "TriggerMessage",
        json!({"requestedMessage": "BootNotification"}),
    )
    .await;
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
    let answer = rpc
        .ask(
            "GetConfiguration",
            json!({"key": ["MeterValueSampleInterval"]}),
        )
        .await;
    assert_eq!(answer["configurationKey"][0]["value"], "42");
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
    // Port 9 on loopback: nothing listens there.
    let dead = "WS,127.0.0.1,9,/ocpp/,ocpp1.6,,,".to_owned();
    let answer = rpc
        .ask(
            "ChangeConfiguration",
            json!({"key": "VendorWebsocketSettings", "value": dead}),
        )
        .await;
    assert_eq!(answer, json!({"status": "Accepted"}));
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
