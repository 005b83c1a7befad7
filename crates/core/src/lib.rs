//! The OCPP 1.6J charge point's sans-I/O core: it behaves as the vendor FAQ documents, takes
//! inputs (frames, hardware events, time) and returns outputs (frames, hardware commands,
//! what to persist, transfers to run). It depends on no async runtime, file system or network
//! crate, so the compiler keeps it pure; the host (`crates/pile`) carries out its outputs.

pub mod certificates;
mod charge_point;
pub mod client_certificate;
pub mod clock;
pub mod config;
mod durable;
pub mod faults;
pub mod firmware_signature;
pub mod hardware;
pub mod measurands;
pub mod meter;
pub mod smart_charging;
pub mod transitions;

pub use charge_point::{
    ChargePoint, ClientIdentity, DiagnosticsEvent, FirmwareEvent, Identity, Input, Options, Output,
    Target, Upload, UploadRefusal, CLOCK_STEP_EVENT, DERATING_FROM_C, FIRMWARE_KEEPALIVE,
    INSTALL_TIME, RESET_STOP_WAIT,
};
pub use durable::{
    Durable, Queued, QueuedEvent, SecurityEvent, Transaction, TransactionMessage, SECURITY_LOG_LEN,
    SECURITY_QUEUE_LEN,
};
pub use oem::NetState;
