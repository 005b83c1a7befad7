//! What the hardware last reported, and how a hardware event reaches the core.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::faults::Fault;
use crate::hardware::{HardwareEvent, MeterReading, Pilot};
use crate::{ChargePoint, Input, NetState, Output};

/// What the hardware last reported, to feed a core again after a restart.
pub(super) struct HardwareMirror {
    plugged: BTreeSet<u32>,
    pilots: BTreeMap<u32, Pilot>,
    cables: BTreeMap<u32, Option<f64>>,
    faults: BTreeSet<Fault>,
    network: NetState,
    online: bool,
    meters: BTreeMap<u32, MeterReading>,
}

impl HardwareMirror {
    /// Nothing reported yet; the network taken to be up.
    pub(super) fn new() -> Self {
        HardwareMirror {
            plugged: BTreeSet::new(),
            pilots: BTreeMap::new(),
            cables: BTreeMap::new(),
            faults: BTreeSet::new(),
            network: NetState::default(),
            online: true,
            meters: BTreeMap::new(),
        }
    }

    /// Whether the hardware last said the network is up.
    pub(super) fn online(&self) -> bool {
        self.online
    }

    /// What the hardware looks like, as events for a new core.
    pub(super) fn inputs(&self) -> Vec<HardwareEvent> {
        let mut events = vec![
            HardwareEvent::Network {
                state: self.network.clone(),
                online: self.online,
            },
            HardwareEvent::Faults(self.faults.clone()),
        ];
        events.extend(self.meters.iter().map(|(c, m)| HardwareEvent::Meter {
            connector: *c,
            reading: m.clone(),
        }));
        for c in &self.plugged {
            if let Some(amps) = self.cables.get(c) {
                events.push(HardwareEvent::Cable {
                    connector: *c,
                    amps: *amps,
                });
            }
            events.push(HardwareEvent::Plug {
                connector: *c,
                plugged: true,
            });
        }
        events.extend(self.pilots.iter().map(|(c, p)| HardwareEvent::Pilot {
            connector: *c,
            state: *p,
        }));
        events
    }

    pub(super) fn record(&mut self, event: &HardwareEvent) {
        match event {
            HardwareEvent::Plug {
                connector,
                plugged: true,
            } => {
                self.plugged.insert(*connector);
            }
            HardwareEvent::Plug {
                connector,
                plugged: false,
            } => {
                self.plugged.remove(connector);
                self.cables.remove(connector);
            }
            HardwareEvent::Pilot { connector, state } => {
                self.pilots.insert(*connector, *state);
            }
            HardwareEvent::Cable { connector, amps } => {
                self.cables.insert(*connector, *amps);
            }
            HardwareEvent::Card { .. } => {}
            HardwareEvent::Faults(f) => self.faults = f.clone(),
            HardwareEvent::Network { state, online } => {
                self.network = state.clone();
                self.online = *online;
            }
            HardwareEvent::Meter { connector, reading } => {
                self.meters.insert(*connector, reading.clone());
            }
        }
    }
}

/// Hands a hardware event to the core.
pub(super) fn feed(cp: &mut ChargePoint, event: &HardwareEvent, now: Duration) -> Vec<Output> {
    match event {
        HardwareEvent::Plug { connector, plugged } => cp.handle(
            Input::Plug {
                connector: *connector,
                plugged: *plugged,
            },
            now,
        ),
        HardwareEvent::Faults(faults) => cp.handle(Input::Faults(faults), now),
        HardwareEvent::Network { state, .. } => cp.handle(Input::Network(state), now),
        HardwareEvent::Meter { connector, reading } => cp.handle(
            Input::Meter {
                connector: *connector,
                reading,
            },
            now,
        ),
        HardwareEvent::Pilot { connector, state } => cp.handle(
            Input::Pilot {
                connector: *connector,
                state: *state,
            },
            now,
        ),
        HardwareEvent::Cable { connector, amps } => cp.handle(
            Input::Cable {
                connector: *connector,
                amps: *amps,
            },
            now,
        ),
        HardwareEvent::Card { connector, id_tag } => cp.handle(
            Input::Card {
                connector: *connector,
                id_tag,
            },
            now,
        ),
    }
}
