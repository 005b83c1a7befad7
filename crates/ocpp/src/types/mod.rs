//! The leaf types of OCPP 1.6 payloads: bounded strings, timestamps, decimals, URIs, enumerations.

mod cistring;
#[macro_use]
mod enum_macro;
mod enums;
mod rate;
mod timestamp;
mod uri;

pub use cistring::{
    CiString, CiString20, CiString25, CiString255, CiString50, CiString500, IdToken, StringTooLong,
};
pub use enums::*;
pub use rate::ChargingRate;
pub use timestamp::{Timestamp, TimestampError};
pub use uri::{InvalidUri, Uri};
