//! The OCPP 1.6J charge point.

pub mod config;
