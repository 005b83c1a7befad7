//! The OCPP 1.6J charge point: a sans-I/O core that behaves as the vendor FAQ documents.

mod charge_point;
pub mod clock;
pub mod config;
mod durable;
pub mod faults;
pub mod hardware;
pub mod insight;
pub mod logbook;
pub mod meter;
pub mod shell;
pub mod smart_charging;
pub mod store;
pub mod transfer;
pub mod transitions;

pub use charge_point::{
    ChargePoint, DiagnosticsEvent, FirmwareEvent, Identity, Input, Options, Output, Target, Upload,
    DERATING_FROM_C, FIRMWARE_KEEPALIVE, INSTALL_TIME,
};
pub use durable::{Durable, Queued, Transaction, TransactionMessage};
pub use vendor::NetState;
