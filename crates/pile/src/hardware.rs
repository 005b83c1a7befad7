//! The hardware behind the pile, as a trait: a real wallbox's drivers or the simulator
//! (`crates/sim`) implement it; the shell feeds what it reports to the core.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;

use crate::faults::Fault;
use crate::NetState;

/// A change the hardware reports.
#[derive(Debug, Clone, PartialEq)]
pub enum HardwareEvent {
    /// A plug went into a connector (1-based), or came out.
    Plug { connector: u32, plugged: bool },
    /// The set of active faults is now this.
    Faults(BTreeSet<Fault>),
    /// The network is now this; `online` says whether the server can be reached at all.
    Network { state: NetState, online: bool },
    /// A connector's meter reads this now.
    Meter {
        connector: u32,
        reading: MeterReading,
    },
}

/// What a connector's meter measures (single phase, L1).
#[derive(Debug, Clone, PartialEq)]
pub struct MeterReading {
    /// Energy.Active.Import.Register, Wh.
    pub energy_wh: i64,
    /// Power.Active.Import, W.
    pub power_w: f64,
    /// Current.Import, A.
    pub current_a: f64,
    /// Current.Offered, A: what the pile offers the EV.
    pub offered_a: f64,
    /// Voltage, V.
    pub voltage_v: f64,
    /// Frequency, Hz.
    pub frequency_hz: f64,
    /// Temperature sensors, °C, in the order the pile lists them.
    pub temperatures_c: Vec<f64>,
}

pub type EventFuture<'a> = Pin<Box<dyn Future<Output = Option<HardwareEvent>> + Send + 'a>>;

pub trait Hardware: Send + 'static {
    /// Waits for the next change; `None` when the hardware is gone.
    fn next_event(&mut self) -> EventFuture<'_>;
}

/// Hardware that never reports anything (a pile run without a simulator).
pub struct NoHardware;

impl Hardware for NoHardware {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(std::future::pending())
    }
}
