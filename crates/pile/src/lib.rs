//! The OCPP 1.6J charge point's host: it carries out what the sans-I/O core (`pile_core`)
//! decides (websocket, state store and outbox journal, file transfers, the log book and its
//! MQTT stream) for one pile, and re-exports the core.

pub mod hardware;
pub mod insight;
pub mod link;
pub mod logbook;
pub mod shell;
pub mod store;
pub mod telemetry;
pub mod transfer;

pub use pile_core::{
    clock, config, faults, meter, smart_charging, transitions, ChargePoint, DiagnosticsEvent,
    Durable, FirmwareEvent, Identity, Input, NetState, Options, Output, Queued, Target,
    Transaction, TransactionMessage, Upload, UploadRefusal, DERATING_FROM_C, FIRMWARE_KEEPALIVE,
    INSTALL_TIME, RESET_STOP_WAIT,
};
