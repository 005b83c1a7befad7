//! What the hardware reports to the core and what the core tells it to do. The `Hardware`
//! trait that real drivers or the simulator implement lives in the host (`pile::hardware`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

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
    /// The control pilot of a connector reads this state now.
    Pilot { connector: u32, state: Pilot },
    /// The cable's current capacity read through CC (proximity) when a plug went in; `None`
    /// when no valid CC resistor is seen.
    Cable { connector: u32, amps: Option<f64> },
    /// An RFID card was presented, at a connector's reader or at the pile's one.
    Card {
        connector: Option<u32>,
        id_tag: String,
    },
}

/// The control pilot's state (IEC 61851-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pilot {
    /// No EV.
    A,
    /// An EV is connected and does not ask for energy.
    B,
    /// The EV asks for energy.
    C,
    /// The pilot is shorted or the pile is off (error).
    E,
    /// The pile signals a fault.
    F,
}

/// What the pile tells the hardware to do.
#[derive(Debug, Clone, PartialEq)]
pub enum HardwareCommand {
    /// Close or open a connector's main relay (contactor).
    Relay { connector: u32, closed: bool },
    /// The current the control pilot offers the EV (its PWM duty cycle); `None`: no offer
    /// (a steady +12 V / 100 %, the EV must not draw).
    Offer { connector: u32, amps: Option<f64> },
    /// Release the socket's cable lock.
    Unlock { connector: u32 },
    /// Sound the buzzer.
    Beep(Beep),
}

/// Why the buzzer sounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Beep {
    /// A card was accepted, or a transaction started or stopped.
    Accepted,
    /// A card was refused.
    Refused,
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
