//! The shell runs a pile on any store behind the `PileStore` trait (the fleet's shared store
//! will be one): here one in memory, against a central of ours over a real websocket.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocpp::{
    BootNotificationResponse, CallError, Decoded, HeartbeatResponse, RegistrationStatus, Request,
    Response, StatusNotificationResponse, Timestamp,
};
use pile::config::Factory;
use pile::hardware::NoHardware;
use pile::shell::{control_channel, run_with_store, PileSettings};
use pile::store::{PileStore, Saving, StoreError};
use pile::{Durable, Identity, Options};
use tokio::sync::mpsc;
use transport::auth::AllowAll;
use transport::server::{ServerConfig, WsServer};
use transport::{spawn_rpc, HandlerFuture, LinkConfig};

#[derive(Clone, Default)]
struct MemoryStore(Arc<Mutex<(Option<Durable>, usize)>>);

impl PileStore for MemoryStore {
    fn load(&mut self) -> Result<Option<Durable>, StoreError> {
        Ok(self.0.lock().unwrap().0.clone())
    }
    fn save<'a>(&'a mut self, state: &'a Durable) -> Saving<'a> {
        let mut s = self.0.lock().unwrap();
        s.0 = Some(state.clone());
        s.1 += 1;
        Box::pin(std::future::ready(Ok(())))
    }
}

#[tokio::test]
async fn a_pile_runs_on_a_store_of_another_kind() {
    let mut server = WsServer::bind("127.0.0.1:0", ServerConfig::new(Arc::new(AllowAll)))
        .await
        .unwrap();
    let (booted_tx, mut booted) = mpsc::unbounded_channel();
    let store = MemoryStore::default();
    let settings = PileSettings {
        state_dir: std::path::PathBuf::from("/nonexistent"),
        firmware_file: None,
        factory: Factory {
            serial_number: "MEM-1".into(),
            connectors: 1,
            settings: oem::WebsocketSettings::from_url(&format!(
                "ws://{}/ocpp/",
                server.local_addr()
            ))
            .unwrap(),
            offline_cards: Vec::new(),
        },
        identity: Identity {
            vendor: "ocpile".into(),
            model: "M3G3".into(),
            firmware_version: "1".into(),
            meter_type: None,
            meter_serial_number: None,
        },
        options: Options::default(),
        tls: None,
        tls_versions: vec![pile::shell::TlsVersion::Tls12],
        resolve: Vec::new(),
        write_timeout: pile::shell::WRITE_TIMEOUT,
        log_budget: pile::logbook::DEFAULT_BUDGET,
        bind: None,
        telemetry: None,
    };
    let (_handle, control) = control_channel();
    let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
    let pile = tokio::spawn(run_with_store(
        settings,
        Box::new(store.clone()),
        Box::new(NoHardware),
        control,
        async move {
            let _ = stop.await;
        },
    ));
    let accepted = tokio::time::timeout(Duration::from_secs(30), server.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(accepted.identity, "MEM-1");
    let handler = Arc::new(move |request: Decoded<Request>| -> HandlerFuture {
        let booted = booted_tx.clone();
        Box::pin(async move {
            let now = Timestamp::from_utc(chrono::Utc::now());
            match request.value {
                Request::BootNotification(_) => {
                    let _ = booted.send(());
                    Ok(Response::BootNotification(BootNotificationResponse {
                        status: RegistrationStatus::Accepted,
                        current_time: now,
                        interval: 300,
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
    });
    let _rpc = spawn_rpc(accepted.ws, LinkConfig::default(), handler);
    tokio::time::timeout(Duration::from_secs(30), booted.recv())
        .await
        .unwrap()
        .unwrap();
    // The accepted boot's interval is saved in the store the pile was given.
    let saved = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(d) = store.0.lock().unwrap().0.clone() {
                if d.config().get("HeartbeatInterval").map(String::as_str) == Some("300") {
                    return d;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the store holds the state");
    assert!(saved.boots() >= 1);
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), pile)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
