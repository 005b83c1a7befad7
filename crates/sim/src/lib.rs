//! Simulated hardware for virtual piles, and the pile's local control port (the stand-in for
//! the vendor's Bluetooth app).

pub mod control;
pub mod fleet;
mod hardware;

pub use hardware::{
    simulated, simulated_with, Ev, HardwareState, Interface, NetworkUpdate, OutletState, SimError,
    SimHandle, SimHardware,
};
