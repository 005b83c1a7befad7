//! The fleet: thousands of virtual piles in one process, each the real pile core in the real
//! host (`pile::shell`) on simulated hardware, all on one tokio runtime. They share one
//! durable store with group commit ([`SharedStore`]), one TLS configuration, one set of
//! counters ([`Telemetry`]) and one timer structure for what the scenario does to them
//! ([`schedule::Schedule`]); their meters are read when a core needs a reading.

pub mod control;
pub mod scenario;
pub mod schedule;
pub mod store;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pile::config::WebsocketSettings;
use pile::config::{keys, Factory};
use pile::shell::{control_channel, run_with_store, PileHandle, PileSettings, TlsVersion};
use pile::store::PileStore;
use pile::telemetry::Telemetry;
use pile::{Identity, Options};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use scenario::Scenario;
pub use store::{PileSlot, SharedStore};

use crate::SimHandle;

/// What a fleet is made of.
#[derive(Clone)]
pub struct FleetSpec {
    pub count: usize,
    /// The central system's websocket URL without the identity (`ws://host:port/ocpp/`).
    pub csms: String,
    /// The piles are `<prefix>00001`, `<prefix>00002`, ...
    pub id_prefix: String,
    /// Or these identities, one pile each (then `count` is their number).
    pub names: Vec<String>,
    pub connectors: u32,
    /// Piles started per second.
    pub connect_rate: f64,
    pub scenario: Scenario,
    /// Local addresses the connections come from, in turn (empty: the system's choice).
    pub bind: Vec<IpAddr>,
    /// Where the shared store (`fleet.redb`) lives (the piles keep no firmware image: a download
    /// streams through and is checked).
    pub state_dir: PathBuf,
    /// For `wss://`: the central's CA, shared by every pile.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The piles' password (Security Profile 1), if the central asks for one.
    pub password: Option<String>,
    /// idTags the scenario presents as cards (the central must accept them); without any,
    /// every session is plug-and-charge (the idTag is the pile's serial number, FAQ 3.4).
    pub id_tags: Vec<String>,
    /// With idTags: the share of piles that take cards (plug-and-charge off at those).
    pub card_share: f64,
    /// Configuration keys set at each pile when it starts, as the local provisioning path
    /// sets them (ChangeConfiguration's rules): name (a declared key) and value.
    pub provision: Vec<(&'static str, String)>,
    /// Bytes of log each pile keeps for GetDiagnostics.
    pub log_budget: usize,
    /// The scenario's dice.
    pub seed: u64,
}

impl FleetSpec {
    /// A fleet of `count` piles for `csms`, idle, started as fast as they connect.
    pub fn new(count: usize, csms: &str, state_dir: impl Into<PathBuf>) -> FleetSpec {
        FleetSpec {
            count,
            csms: csms.to_owned(),
            id_prefix: "FLEET-".into(),
            names: Vec::new(),
            connectors: 1,
            connect_rate: 1000.0,
            scenario: Scenario::Idle,
            bind: Vec::new(),
            state_dir: state_dir.into(),
            tls: None,
            password: None,
            id_tags: Vec::new(),
            card_share: 2.0 / 3.0,
            provision: Vec::new(),
            log_budget: 2048,
            seed: 1,
        }
    }

    pub fn id(&self, n: usize) -> String {
        match self.names.get(n) {
            Some(name) => name.clone(),
            None => format!("{}{:05}", self.id_prefix, n + 1),
        }
    }

    /// Sets MeterValueSampleInterval at every pile's start.
    pub fn sample_every(&mut self, seconds: u32) {
        self.provision
            .push((keys::METER_VALUE_SAMPLE_INTERVAL.0, seconds.to_string()));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("--csms {0}: {1}")]
    Csms(String, String),
    #[error(transparent)]
    Store(#[from] pile::store::StoreError),
}

/// One pile of the fleet, as the control API and the scenario reach it.
pub struct FleetPile {
    pub id: String,
    pub handle: PileHandle,
    pub sim: SimHandle,
}

/// A running fleet.
pub struct Fleet {
    pub spec: FleetSpec,
    piles: Vec<FleetPile>,
    index: HashMap<String, usize>,
    pub telemetry: Arc<Telemetry>,
    pub store: Arc<SharedStore>,
    started: AtomicUsize,
    stop: watch::Sender<bool>,
    scenario: watch::Sender<Scenario>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Fleet {
    /// Builds the piles and starts them at the spec's rate (in the background); the scenario
    /// starts with them.
    pub fn start(mut spec: FleetSpec) -> Result<Arc<Fleet>, FleetError> {
        if !spec.names.is_empty() {
            spec.count = spec.names.len();
        }
        let mut settings = WebsocketSettings::from_url(&spec.csms)
            .map_err(|e| FleetError::Csms(spec.csms.clone(), e.to_string()))?;
        if let Some(p) = &spec.password {
            settings.password = p.clone();
        }
        if settings.secure && spec.tls.is_none() {
            return Err(FleetError::Csms(
                spec.csms.clone(),
                "wss:// needs the central's CA".into(),
            ));
        }
        let store = SharedStore::open(&spec.state_dir.join("fleet.redb"))?;
        let telemetry = Arc::new(Telemetry::default());
        let (stop, stopped) = watch::channel(false);
        let (scenario, _) = watch::channel(spec.scenario);
        let mut piles = Vec::with_capacity(spec.count);
        let mut index = HashMap::with_capacity(spec.count);
        let mut ready = Vec::with_capacity(spec.count);
        for n in 0..spec.count {
            let id = spec.id(n);
            let mut slot = store.pile(&id);
            // The simulated meters go on from the registers last recorded, as real ones do.
            let registers = slot
                .load()?
                .map(|d| d.registers().clone())
                .unwrap_or_default();
            let (sim, hardware) = crate::simulated_with(spec.connectors, &registers);
            let (handle, control) = control_channel();
            let pile = PileSettings {
                state_dir: spec.state_dir.join("piles").join(&id),
                // Thousands of piles: each image streams through and is checked, none is kept.
                firmware_file: None,
                factory: Factory {
                    serial_number: id.clone(),
                    connectors: spec.connectors,
                    settings: settings.clone(),
                    offline_cards: Vec::new(),
                },
                identity: Identity {
                    vendor: "ocpile".into(),
                    model: "M3G3".into(),
                    firmware_version: env!("CARGO_PKG_VERSION").into(),
                    meter_type: Some("ocpile simulated meter".into()),
                    meter_serial_number: Some(format!("{id}-M")),
                },
                options: Options::default(),
                tls: spec.tls.clone(),
                // The M3G3's versions.
                tls_versions: vec![TlsVersion::Tls12, TlsVersion::Tls13],
                resolve: Vec::new(),
                write_timeout: pile::shell::WRITE_TIMEOUT,
                log_budget: spec.log_budget,
                bind: (!spec.bind.is_empty()).then(|| spec.bind[n % spec.bind.len()]),
                telemetry: Some(telemetry.clone()),
            };
            ready.push((pile, slot, hardware, control));
            index.insert(id.clone(), n);
            piles.push(FleetPile { id, handle, sim });
        }
        let fleet = Arc::new(Fleet {
            spec,
            piles,
            index,
            telemetry,
            store,
            started: AtomicUsize::new(0),
            stop,
            scenario,
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let starter = fleet.clone();
        let starting = tokio::spawn(async move {
            starter.start_piles(ready, stopped).await;
        });
        let scenario = tokio::spawn(scenario::run(fleet.clone()));
        fleet.tasks().extend([starting, scenario]);
        Ok(fleet)
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn start_piles(
        &self,
        ready: Vec<(
            PileSettings,
            PileSlot,
            crate::SimHardware,
            pile::shell::Control,
        )>,
        stopped: watch::Receiver<bool>,
    ) {
        let every = Duration::from_secs_f64(1.0 / self.spec.connect_rate.max(0.001));
        let mut next = tokio::time::Instant::now();
        for (n, (settings, slot, hardware, control)) in ready.into_iter().enumerate() {
            if *stopped.borrow() {
                return;
            }
            tokio::time::sleep_until(next).await;
            next += every;
            let mut stop = stopped.clone();
            let id = self.piles[n].id.clone();
            let task = tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                let store: Box<dyn PileStore> = Box::new(slot);
                if let Err(e) =
                    run_with_store(settings, store, Box::new(hardware), control, shutdown).await
                {
                    tracing::error!("{id}: {e}");
                }
            });
            let mut provision = self.spec.provision.clone();
            if !self.spec.id_tags.is_empty() && scenario::is_card_pile(n, self.spec.card_share) {
                provision.push((keys::VENDOR_DIRECT_WORK_MODE.0, "false".into()));
            }
            if !provision.is_empty() {
                let handle = self.piles[n].handle.clone();
                let keys = provision;
                let id = self.piles[n].id.clone();
                tokio::spawn(async move {
                    for (key, value) in keys {
                        match handle.provision(key, &value).await {
                            Some(ocpp::ConfigurationStatus::Accepted) | None => {}
                            Some(status) => tracing::warn!("{id}: {key}={value}: {status:?}"),
                        }
                    }
                });
            }
            self.tasks().push(task);
            self.started.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn piles(&self) -> &[FleetPile] {
        &self.piles
    }

    pub fn pile(&self, id: &str) -> Option<&FleetPile> {
        self.index.get(id).map(|n| &self.piles[*n])
    }

    /// How many piles run so far.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Stops every pile (each closes its connection) and waits for them.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks());
        for task in tasks {
            let _ = task.await;
        }
    }

    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    pub(crate) fn scenario_changes(&self) -> watch::Receiver<Scenario> {
        self.scenario.subscribe()
    }

    /// What happens to the piles from now on.
    pub fn set_scenario(&self, scenario: Scenario) {
        self.scenario.send_replace(scenario);
    }

    pub fn scenario(&self) -> Scenario {
        *self.scenario.borrow()
    }
}
