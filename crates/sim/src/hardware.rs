//! The simulated wallbox: connectors that take a plug, injectable faults, and three network
//! interfaces (ETH, WiFi, 4G) of which the pile uses the first one up, in that order.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use pile::faults::Fault;
use pile::hardware::{EventFuture, Hardware, HardwareEvent, MeterReading};
use pile::NetState;
use serde::Deserialize;
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Interface {
    #[serde(rename = "ETH")]
    Eth,
    #[serde(rename = "WiFi")]
    Wifi,
    #[serde(rename = "4G")]
    Lte,
}

impl Interface {
    fn name(self) -> &'static str {
        match self {
            Interface::Eth => "ETH",
            Interface::Wifi => "WiFi",
            Interface::Lte => "4G",
        }
    }
}

/// A change to the simulated network; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkUpdate {
    pub connectivity: Option<Interface>,
    pub online: Option<bool>,
    pub wifi_rssi: Option<i32>,
    pub lte_rssi: Option<i32>,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub ip: Option<String>,
}

#[derive(Debug, Clone)]
struct Network {
    connectivity: Interface,
    online: bool,
    wifi_rssi: i32,
    lte_rssi: i32,
    iccid: String,
    imsi: String,
    ip: String,
}

impl Network {
    /// What the pile sees. The SIM's ICCID and IMSI show only when 4G alone carries the
    /// connection (FAQ 3.9).
    fn state(&self) -> NetState {
        let lte = self.connectivity == Interface::Lte;
        NetState {
            connectivity: self.connectivity.name().into(),
            wifi_rssi: if self.connectivity == Interface::Wifi {
                self.wifi_rssi
            } else {
                -1
            },
            lte_rssi: if lte { self.lte_rssi } else { -1 },
            iccid: if lte {
                self.iccid.clone()
            } else {
                String::new()
            },
            imsi: if lte {
                self.imsi.clone()
            } else {
                String::new()
            },
            ip: self.ip.clone(),
        }
    }
}

struct State {
    connectors: u32,
    plugged: BTreeSet<u32>,
    faults: BTreeSet<Fault>,
    network: Network,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("no connector {0}")]
    NoConnector(u32),
    #[error("unknown fault {0:?}")]
    UnknownFault(String),
}

/// Acts on the simulated hardware (what a person does at the pile); cheap to clone.
#[derive(Clone)]
pub struct SimHandle {
    events: mpsc::UnboundedSender<HardwareEvent>,
    state: Arc<Mutex<State>>,
}

/// The [`Hardware`] side, for the pile's shell.
pub struct SimHardware {
    events: mpsc::UnboundedReceiver<HardwareEvent>,
}

impl Hardware for SimHardware {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(self.events.recv())
    }
}

/// A single-phase 7 kW connector at rest: 230 V, 32 A offered, nothing drawn.
fn idle_meter() -> MeterReading {
    MeterReading {
        energy_wh: 0,
        power_w: 0.0,
        current_a: 0.0,
        offered_a: 32.0,
        voltage_v: 230.0,
        frequency_hz: 50.0,
        temperatures_c: vec![25.0, 25.0, 25.0],
    }
}

/// A simulated wallbox with `connectors` connectors, on Ethernet, online.
pub fn simulated(connectors: u32) -> (SimHandle, SimHardware) {
    let (tx, rx) = mpsc::unbounded_channel();
    let network = Network {
        connectivity: Interface::Eth,
        online: true,
        wifi_rssi: -55,
        lte_rssi: -71,
        iccid: "89860000000000000000".into(),
        imsi: "460000000000000".into(),
        // A documentation address (RFC 5737): the simulated pile's own.
        ip: "192.0.2.10".into(),
    };
    let handle = SimHandle {
        events: tx,
        state: Arc::new(Mutex::new(State {
            connectors,
            plugged: BTreeSet::new(),
            faults: BTreeSet::new(),
            network,
        })),
    };
    handle.send_network();
    for connector in 1..=connectors {
        handle.send(HardwareEvent::Meter {
            connector,
            reading: idle_meter(),
        });
    }
    (handle, SimHardware { events: rx })
}

impl SimHandle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, event: HardwareEvent) {
        // The pile may be gone; nothing to tell then.
        let _ = self.events.send(event);
    }

    fn send_network(&self) {
        let (state, online) = {
            let s = self.state();
            (s.network.state(), s.network.online)
        };
        self.send(HardwareEvent::Network { state, online });
    }

    pub fn plug(&self, connector: u32, plugged: bool) -> Result<(), SimError> {
        {
            let mut s = self.state();
            if connector == 0 || connector > s.connectors {
                return Err(SimError::NoConnector(connector));
            }
            if plugged {
                s.plugged.insert(connector);
            } else {
                s.plugged.remove(&connector);
            }
        }
        self.send(HardwareEvent::Plug { connector, plugged });
        Ok(())
    }

    /// Adds faults by name; returns the active set.
    pub fn add_faults(&self, names: &[String]) -> Result<Vec<&'static str>, SimError> {
        let new: Vec<Fault> = names
            .iter()
            .map(|n| Fault::from_name(n).ok_or_else(|| SimError::UnknownFault(n.clone())))
            .collect::<Result<_, _>>()?;
        let faults = {
            let mut s = self.state();
            s.faults.extend(new);
            s.faults.clone()
        };
        let names = faults.iter().map(|f| f.name()).collect();
        self.send(HardwareEvent::Faults(faults));
        Ok(names)
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
        self.send(HardwareEvent::Faults(BTreeSet::new()));
    }

    pub fn update_network(&self, update: NetworkUpdate) {
        {
            let mut s = self.state();
            let n = &mut s.network;
            if let Some(c) = update.connectivity {
                n.connectivity = c;
            }
            if let Some(o) = update.online {
                n.online = o;
            }
            if let Some(r) = update.wifi_rssi {
                n.wifi_rssi = r;
            }
            if let Some(r) = update.lte_rssi {
                n.lte_rssi = r;
            }
            if let Some(v) = update.iccid {
                n.iccid = v;
            }
            if let Some(v) = update.imsi {
                n.imsi = v;
            }
            if let Some(v) = update.ip {
                n.ip = v;
            }
        }
        self.send_network();
    }
}
