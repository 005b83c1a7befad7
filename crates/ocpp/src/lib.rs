//! OCPP-J 1.6: typed messages for the 28 actions of edition 2 and the 11 of the Security
//! Whitepaper (edition 2), frames, decoding policies, CallError mapping and a sans-I/O RPC
//! endpoint. No I/O.
//!
//! Encoding is strict: timestamps are RFC 3339 UTC with milliseconds and `Z`, charging rates
//! are multiples of 0.1, absent optional fields are omitted. Decoding is [`Policy::Strict`],
//! [`Policy::Lenient`] (accepts known real-world deviations and reports them) or
//! [`Policy::Input`] (strict but for date-times, which may be any RFC 3339 form).

pub mod action;
pub mod codec;
pub mod error;
#[doc(hidden)]
pub mod fastpath;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod identity;
pub mod messages;
pub mod rpc;
pub mod types;

pub use action::{
    decode, encode, Action, FeatureProfile, Initiator, OcppRequest, Request, Response,
};
pub use codec::{Decoded, Deviation, DeviationKind, Policy};
pub use error::{CallError, CallErrorCode, PayloadError};
pub use frame::{Call, Frame, FrameError};
pub use messages::*;
pub use types::*;
