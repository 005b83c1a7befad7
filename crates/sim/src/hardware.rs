//! The simulated wallbox: connectors that take an EV's plug, a relay, a control pilot and a
//! meter per connector, an RFID reader, a buzzer, injectable faults, and three network
//! interfaces (ETH, WiFi, 4G) of which the pile uses the first one up, in that order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pile::faults::Fault;
use pile::hardware::{
    Beep, EventFuture, Hardware, HardwareCommand, HardwareEvent, MeterReading, Pilot,
};
use pile::NetState;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The grid's voltage and frequency.
const VOLTS: f64 = 230.0;
const HERTZ: f64 = 50.0;

/// An EV plugged into a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ev {
    /// The most current the EV draws (A).
    pub max_current: f64,
    /// The energy the EV takes before its battery is full (Wh); `None`: no limit.
    pub energy_wh: Option<f64>,
    /// The cable's capacity as its CC resistor tells (A); `None`: no valid resistor.
    pub cable_a: Option<f64>,
    /// The energy taken so far (Wh).
    #[serde(skip_deserializing)]
    pub received_wh: f64,
}

impl Default for Ev {
    fn default() -> Self {
        Ev {
            max_current: 32.0,
            energy_wh: None,
            cable_a: Some(32.0),
            received_wh: 0.0,
        }
    }
}

impl Ev {
    fn wants_energy(&self) -> bool {
        self.energy_wh.is_none_or(|full| self.received_wh < full)
    }
}

/// One connector's hardware.
#[derive(Debug, Clone)]
struct Outlet {
    ev: Option<Ev>,
    offer: Option<f64>,
    relay: bool,
    pilot: Pilot,
    energy_wh: f64,
    temperature_c: f64,
    unlocks: u32,
}

impl Outlet {
    fn pilot_now(&self) -> Pilot {
        match &self.ev {
            None => Pilot::A,
            Some(ev) if self.offer.is_some() && ev.wants_energy() => Pilot::C,
            Some(_) => Pilot::B,
        }
    }

    fn current(&self) -> f64 {
        match (&self.ev, self.offer) {
            (Some(ev), Some(offer)) if self.relay && self.pilot == Pilot::C => {
                offer.min(ev.max_current)
            }
            _ => 0.0,
        }
    }

    fn reading(&self) -> MeterReading {
        let current = self.current();
        MeterReading {
            energy_wh: self.energy_wh.floor() as i64,
            power_w: current * VOLTS,
            current_a: current,
            offered_a: self.offer.unwrap_or(0.0),
            voltage_v: VOLTS,
            frequency_hz: HERTZ,
            temperatures_c: vec![self.temperature_c; 3],
        }
    }
}

/// What the simulated hardware shows besides the pile (the control port's `hardware`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HardwareState {
    /// How often the buzzer sounded, by reason.
    pub beeps: BTreeMap<&'static str, u32>,
    pub outlets: Vec<OutletState>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OutletState {
    pub connector: u32,
    pub ev: Option<Ev>,
    pub relay_closed: bool,
    pub pilot: Pilot,
    pub offered_a: Option<f64>,
    pub current_a: f64,
    pub energy_wh: f64,
    pub temperature_c: f64,
    pub unlocks: u32,
}

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
    /// Index 0 unused.
    outlets: Vec<Outlet>,
    faults: BTreeSet<Fault>,
    network: Network,
    beeps: BTreeMap<&'static str, u32>,
    /// When the energy was last added up.
    metered_at: Instant,
}

impl State {
    /// Adds up the energy delivered since the last time.
    fn integrate(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.metered_at);
        self.metered_at = now;
        self.integrate_over(elapsed);
    }

    /// Adds up the energy delivered over `elapsed` at the present currents. A battery takes
    /// no more than it lacks: the EV stops drawing the moment it is full.
    fn integrate_over(&mut self, elapsed: std::time::Duration) {
        let hours = elapsed.as_secs_f64() / 3600.0;
        for outlet in self.outlets.iter_mut().skip(1) {
            let mut wh = outlet.current() * VOLTS * hours;
            if let Some(ev) = outlet.ev.as_mut() {
                match ev.energy_wh {
                    // Within a milliwatt-hour is full (rounding must not leave a sliver).
                    Some(full) if ev.received_wh + wh >= full - 1e-3 => {
                        wh = (full - ev.received_wh).max(0.0);
                        ev.received_wh = full;
                    }
                    _ => ev.received_wh += wh,
                }
            }
            outlet.energy_wh += wh;
        }
    }

    /// When the first battery that charges now will be full: the one instant the simulator
    /// must wake for by itself (the meters are read when the pile needs them).
    fn next_full(&self) -> Option<Instant> {
        self.outlets
            .iter()
            .skip(1)
            .filter_map(|o| {
                let watts = o.current() * VOLTS;
                let ev = o.ev.as_ref()?;
                let left = ev.energy_wh? - ev.received_wh;
                (watts > 0.0)
                    .then(|| Duration::from_secs_f64((left.max(0.0) / watts) * 3600.0))
                    .map(|d| d + Duration::from_millis(1))
            })
            .min()
            .map(|after| self.metered_at + after)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("no connector {0}")]
    NoConnector(u32),
    #[error("unknown fault {0:?}")]
    UnknownFault(String),
    #[error("an idTag has 1 to 20 characters")]
    BadIdTag,
}

/// What the simulated hardware reports, waiting for the pile: a queue that takes no memory
/// while empty (a fleet has one per pile) and wakes the pile's host.
#[derive(Default)]
struct Events {
    queue: Mutex<std::collections::VecDeque<HardwareEvent>>,
    wake: Notify,
}

impl Events {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<HardwareEvent>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, event: HardwareEvent) {
        self.lock().push_back(event);
        // A permit is kept when nobody waits: the next wait returns at once.
        self.wake.notify_one();
    }

    fn try_next(&self) -> Option<HardwareEvent> {
        let mut queue = self.lock();
        let event = queue.pop_front();
        if queue.is_empty() && queue.capacity() > 8 {
            queue.shrink_to_fit();
        }
        event
    }

    async fn next(&self) -> HardwareEvent {
        loop {
            if let Some(event) = self.try_next() {
                return event;
            }
            self.wake.notified().await;
        }
    }
}

/// Acts on the simulated hardware (what a person does at the pile); cheap to clone.
#[derive(Clone)]
pub struct SimHandle {
    events: Arc<Events>,
    state: Arc<Mutex<State>>,
}

/// The [`Hardware`] side, for the pile's shell. It runs no timer of its own but the one for
/// a battery that becomes full; the meters are integrated when read.
pub struct SimHardware {
    events: Arc<Events>,
    handle: SimHandle,
}

impl Hardware for SimHardware {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(async move {
            loop {
                let full_at = self.handle.state().next_full();
                tokio::select! {
                    event = self.events.next() => return Some(event),
                    _ = tokio::time::sleep_until(full_at.unwrap_or_else(Instant::now)), if full_at.is_some() => {
                        self.handle.batteries_checked();
                    }
                }
            }
        })
    }

    fn command(&mut self, command: &HardwareCommand) {
        self.handle.command(command);
    }

    fn read_meter(&mut self, connector: u32) -> Option<MeterReading> {
        let mut s = self.handle.state();
        s.integrate();
        s.outlets
            .get(connector as usize)
            .filter(|_| connector > 0)
            .map(Outlet::reading)
    }
}

/// A simulated wallbox with `connectors` connectors, on Ethernet, online, its meters at zero.
pub fn simulated(connectors: u32) -> (SimHandle, SimHardware) {
    simulated_with(connectors, &BTreeMap::new())
}

/// A simulated wallbox whose meters start at the given registers (Wh): a real meter keeps its
/// count across the pile's restarts.
pub fn simulated_with(connectors: u32, registers: &BTreeMap<u32, i64>) -> (SimHandle, SimHardware) {
    let events = Arc::new(Events::default());
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
    let outlets = (0..=connectors)
        .map(|c| Outlet {
            ev: None,
            offer: None,
            relay: false,
            pilot: Pilot::A,
            energy_wh: registers.get(&c).copied().unwrap_or(0) as f64,
            temperature_c: 25.0,
            unlocks: 0,
        })
        .collect();
    let handle = SimHandle {
        events: events.clone(),
        state: Arc::new(Mutex::new(State {
            connectors,
            outlets,
            faults: BTreeSet::new(),
            network,
            beeps: BTreeMap::new(),
            metered_at: Instant::now(),
        })),
    };
    handle.send_network();
    for connector in 1..=connectors {
        handle.send_meter(connector);
    }
    let hardware = SimHardware {
        events,
        handle: handle.clone(),
    };
    (handle, hardware)
}

impl SimHandle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, event: HardwareEvent) {
        // The pile may be gone; nothing to tell then.
        self.events.push(event);
    }

    fn send_network(&self) {
        let (state, online) = {
            let s = self.state();
            (s.network.state(), s.network.online)
        };
        self.send(HardwareEvent::Network { state, online });
    }

    fn send_meter(&self, connector: u32) {
        let reading = self.state().outlets[connector as usize].reading();
        self.send(HardwareEvent::Meter { connector, reading });
    }

    fn check(&self, connector: u32) -> Result<(), SimError> {
        if connector == 0 || connector > self.state().connectors {
            return Err(SimError::NoConnector(connector));
        }
        Ok(())
    }

    /// Plugs an EV with default properties in, or pulls the plug.
    pub fn plug(&self, connector: u32, plugged: bool) -> Result<(), SimError> {
        if plugged {
            self.plug_ev(connector, Ev::default())
        } else {
            self.unplug(connector)
        }
    }

    /// Plugs an EV in: the plug, its cable's capacity (CC), then the EV on the pilot (B).
    pub fn plug_ev(&self, connector: u32, ev: Ev) -> Result<(), SimError> {
        self.check(connector)?;
        let cable = ev.cable_a;
        {
            let mut s = self.state();
            s.integrate();
            if s.outlets[connector as usize].ev.is_some() {
                return Ok(());
            }
            s.outlets[connector as usize].ev = Some(ev);
        }
        self.send(HardwareEvent::Cable {
            connector,
            amps: cable,
        });
        self.send(HardwareEvent::Plug {
            connector,
            plugged: true,
        });
        self.update_pilot(connector);
        Ok(())
    }

    pub fn unplug(&self, connector: u32) -> Result<(), SimError> {
        self.check(connector)?;
        {
            let mut s = self.state();
            s.integrate();
            if s.outlets[connector as usize].ev.take().is_none() {
                return Ok(());
            }
        }
        self.update_pilot(connector);
        self.send(HardwareEvent::Plug {
            connector,
            plugged: false,
        });
        self.send_meter(connector);
        Ok(())
    }

    /// A card at the reader (of a connector, or of the pile).
    pub fn card(&self, connector: Option<u32>, id_tag: &str) -> Result<(), SimError> {
        if let Some(c) = connector {
            self.check(c)?;
        }
        if id_tag.is_empty() || id_tag.chars().count() > 20 {
            return Err(SimError::BadIdTag);
        }
        self.send(HardwareEvent::Card {
            connector,
            id_tag: id_tag.to_owned(),
        });
        Ok(())
    }

    /// Sets what a connector's temperature sensors read (°C).
    pub fn set_temperature(&self, connector: u32, celsius: f64) -> Result<(), SimError> {
        self.check(connector)?;
        self.state().outlets[connector as usize].temperature_c = celsius;
        self.send_meter(connector);
        Ok(())
    }

    /// Reports a pilot that changed (the EV answers what the pile offers).
    fn update_pilot(&self, connector: u32) {
        let changed = {
            let mut s = self.state();
            let outlet = &mut s.outlets[connector as usize];
            let now = outlet.pilot_now();
            (outlet.pilot != now).then(|| {
                outlet.pilot = now;
                now
            })
        };
        if let Some(state) = changed {
            self.send(HardwareEvent::Pilot { connector, state });
            self.send_meter(connector);
        }
    }

    fn command(&self, command: &HardwareCommand) {
        match command {
            HardwareCommand::Relay { connector, closed } => {
                {
                    let mut s = self.state();
                    s.integrate();
                    if let Some(o) = s.outlets.get_mut(*connector as usize) {
                        o.relay = *closed;
                    }
                }
                self.send_meter(*connector);
            }
            HardwareCommand::Offer { connector, amps } => {
                {
                    let mut s = self.state();
                    s.integrate();
                    if let Some(o) = s.outlets.get_mut(*connector as usize) {
                        o.offer = *amps;
                    }
                }
                self.update_pilot(*connector);
                self.send_meter(*connector);
            }
            HardwareCommand::Unlock { connector } => {
                if let Some(o) = self.state().outlets.get_mut(*connector as usize) {
                    o.unlocks += 1;
                }
            }
            HardwareCommand::Beep(beep) => {
                let name = match beep {
                    Beep::Accepted => "accepted",
                    Beep::Refused => "refused",
                };
                *self.state().beeps.entry(name).or_default() += 1;
            }
        }
    }

    /// A full EV stops asking for energy: its pilot goes from C to B.
    fn batteries_checked(&self) {
        let connectors = {
            let mut s = self.state();
            s.integrate();
            s.connectors
        };
        for c in 1..=connectors {
            self.update_pilot(c);
        }
    }

    /// What the hardware shows.
    pub fn hardware_state(&self) -> HardwareState {
        let mut s = self.state();
        s.integrate();
        HardwareState {
            beeps: s.beeps.clone(),
            outlets: (1..=s.connectors)
                .map(|c| {
                    let o = &s.outlets[c as usize];
                    OutletState {
                        connector: c,
                        ev: o.ev.clone(),
                        relay_closed: o.relay,
                        pilot: o.pilot,
                        offered_a: o.offer,
                        current_a: o.current(),
                        energy_wh: o.energy_wh,
                        temperature_c: o.temperature_c,
                        unlocks: o.unlocks,
                    }
                })
                .collect(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outlet() -> Outlet {
        Outlet {
            ev: None,
            offer: None,
            relay: false,
            pilot: Pilot::A,
            energy_wh: 1000.0,
            temperature_c: 25.0,
            unlocks: 0,
        }
    }

    fn ev(max_current: f64, energy_wh: Option<f64>) -> Ev {
        Ev {
            max_current,
            energy_wh,
            ..Ev::default()
        }
    }

    #[test]
    fn the_pilot_follows_the_ev_and_the_offer() {
        let mut o = outlet();
        assert_eq!(o.pilot_now(), Pilot::A, "no EV");
        o.ev = Some(ev(16.0, None));
        assert_eq!(o.pilot_now(), Pilot::B, "an EV, no offer");
        o.offer = Some(32.0);
        assert_eq!(o.pilot_now(), Pilot::C, "an offer: the EV asks for energy");
        o.ev = Some(Ev {
            received_wh: 500.0,
            ..ev(16.0, Some(500.0))
        });
        assert_eq!(o.pilot_now(), Pilot::B, "a full battery asks for nothing");
    }

    #[test]
    fn current_flows_only_through_a_closed_relay_to_an_ev_that_asks() {
        let mut o = outlet();
        o.ev = Some(ev(16.0, None));
        o.offer = Some(32.0);
        o.pilot = Pilot::C;
        assert_eq!(o.current(), 0.0, "relay open");
        o.relay = true;
        assert_eq!(o.current(), 16.0, "the EV's maximum below the offer");
        o.offer = Some(10.0);
        assert_eq!(o.current(), 10.0, "the offer below the EV's maximum");
        o.pilot = Pilot::B;
        assert_eq!(o.current(), 0.0, "the EV does not ask");
        o.pilot = Pilot::C;
        let r = o.reading();
        assert_eq!((r.current_a, r.power_w, r.offered_a), (10.0, 2300.0, 10.0));
        assert_eq!(
            (r.voltage_v, r.frequency_hz, r.energy_wh),
            (230.0, 50.0, 1000)
        );
        assert_eq!(r.temperatures_c, vec![25.0; 3]);
    }

    #[test]
    fn energy_adds_up_over_time_into_the_register_and_the_battery() {
        let (handle, _hw) = simulated_with(2, &BTreeMap::from([(1, 5000)]));
        let mut state = handle.state();
        let o = &mut state.outlets[1];
        o.ev = Some(ev(16.0, Some(3000.0)));
        o.offer = Some(32.0);
        o.relay = true;
        o.pilot = Pilot::C;
        state.integrate_over(Duration::from_secs(1800));
        let o = &state.outlets[1];
        // 16 A at 230 V for half an hour.
        assert!(
            (o.energy_wh - (5000.0 + 1840.0)).abs() < 1e-6,
            "{}",
            o.energy_wh
        );
        assert!((o.ev.as_ref().unwrap().received_wh - 1840.0).abs() < 1e-6);
        assert_eq!(state.outlets[2].energy_wh, 0.0, "nothing through the other");
        // Another hour: the battery passes full, and the EV stops asking.
        state.integrate_over(Duration::from_secs(3600));
        assert!(!state.outlets[1].ev.as_ref().unwrap().wants_energy());
        assert_eq!(state.outlets[1].pilot_now(), Pilot::B);
    }

    #[tokio::test(start_paused = true)]
    async fn the_meter_is_read_on_demand_and_the_only_wake_is_a_battery_that_fills() {
        let (handle, mut hw) = simulated(1);
        // What the simulator reports at its start: the network and the meter at zero.
        assert!(matches!(
            hw.next_event().await,
            Some(HardwareEvent::Network { .. })
        ));
        assert!(matches!(
            hw.next_event().await,
            Some(HardwareEvent::Meter { .. })
        ));
        // An EV that takes 460 Wh: at 16 A and 230 V, 7 min 30 s.
        handle.plug_ev(1, ev(16.0, Some(460.0))).unwrap();
        hw.command(&HardwareCommand::Offer {
            connector: 1,
            amps: Some(32.0),
        });
        hw.command(&HardwareCommand::Relay {
            connector: 1,
            closed: true,
        });
        let mut last_pilot = None;
        let drain = |hw: &mut SimHardware, last: &mut Option<Pilot>| {
            while let Some(event) = hw.events.try_next() {
                if let HardwareEvent::Pilot { state, .. } = event {
                    *last = Some(state);
                }
            }
        };
        drain(&mut hw, &mut last_pilot);
        assert_eq!(last_pilot, Some(Pilot::C));
        tokio::time::advance(Duration::from_secs(150)).await;
        let r = hw.read_meter(1).unwrap();
        assert_eq!(
            (r.energy_wh, r.current_a),
            (153, 16.0),
            "a third of the way"
        );
        assert!(hw.events.try_next().is_none(), "reading reports nothing");
        // Nothing to wake for but the full battery, exactly when it fills.
        let started = Instant::now();
        let event = hw.next_event().await;
        assert_eq!(
            event,
            Some(HardwareEvent::Pilot {
                connector: 1,
                state: Pilot::B
            })
        );
        let waited = Instant::now() - started;
        assert!(
            waited.abs_diff(Duration::from_secs(300)) < Duration::from_millis(5),
            "{waited:?}"
        );
        let r = hw.read_meter(1).unwrap();
        assert_eq!((r.energy_wh, r.current_a), (460, 0.0), "full, no more");
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(hw.read_meter(1).unwrap().energy_wh, 460);
        assert_eq!(hw.read_meter(2), None, "no such connector");
    }
}
