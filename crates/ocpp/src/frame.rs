//! OCPP-J frames: CALL `[2,id,action,payload]`, CALLRESULT `[3,id,payload]`,
//! CALLERROR `[4,id,code,description,details]`.
//!
//! Frame problems map onto CallError codes as follows (payload problems: see
//! [`PayloadError::from_json`](crate::PayloadError::from_json)):
//!
//! | input | code | id of the answer |
//! |---|---|---|
//! | not JSON, not an array, no message type number | FormationViolation | `-1` |
//! | id missing or not a string | FormationViolation | `-1` |
//! | id longer than 36 characters | FormationViolation | `-1` (an answer may not carry it) |
//! | CALL with fewer than 4 elements | ProtocolError | the id |
//! | CALL with more than 4 elements, action not a string | FormationViolation | the id |
//! | unknown action | NotImplemented | the id |
//!
//! A message type number other than 2, 3 or 4 is ignored, as OCPP-J requires. Only a CALL (or
//! a frame whose type cannot be read) is ever answered: a broken CALLRESULT or CALLERROR is
//! reported to the caller, never answered.

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::action::{Action, Request};
use crate::codec::{Decoded, Policy};
use crate::error::{CallError, CallErrorCode};

/// The longest message id OCPP-J allows.
pub const MAX_ID_LEN: usize = 36;
/// The id used in a CALLERROR answering a frame whose id could not be read.
pub const UNKNOWN_ID: &str = "-1";

pub const CALL: u8 = 2;
pub const CALL_RESULT: u8 = 3;
pub const CALL_ERROR: u8 = 4;

/// A parsed frame; it borrows the text it was parsed from.
#[derive(Debug)]
pub enum Frame<'a> {
    Call(Call<'a>),
    CallResult {
        id: Cow<'a, str>,
        payload: &'a RawValue,
    },
    CallError {
        id: Cow<'a, str>,
        code: CallErrorCode,
        description: Cow<'a, str>,
        details: &'a RawValue,
    },
}

/// A CALL frame.
#[derive(Debug)]
pub struct Call<'a> {
    pub id: Cow<'a, str>,
    pub action: Cow<'a, str>,
    pub payload: &'a RawValue,
}

/// Why a text is not a valid frame.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error} (message type {message_type:?}, id {id:?})")]
pub struct FrameError {
    /// The message type number, when it could be read.
    pub message_type: Option<u8>,
    /// The message id, when it could be read.
    pub id: Option<String>,
    pub error: CallError,
}

impl FrameError {
    fn new(
        message_type: Option<u8>,
        id: Option<&str>,
        code: CallErrorCode,
        description: impl Into<String>,
    ) -> Self {
        FrameError {
            message_type,
            id: id.map(str::to_owned),
            error: CallError::new(code, description),
        }
    }

    /// The CALLERROR frame that answers this error, or `None` when the frame was a
    /// CALLRESULT or CALLERROR (those are never answered).
    pub fn answer(&self) -> Option<String> {
        match self.message_type {
            None | Some(CALL) => Some(call_error(
                self.id.as_deref().unwrap_or(UNKNOWN_ID),
                &self.error,
            )),
            _ => None,
        }
    }
}

fn string<'a>(raw: &'a RawValue) -> Option<Cow<'a, str>> {
    serde_json::from_str::<Cow<'a, str>>(raw.get()).ok()
}

impl<'a> Frame<'a> {
    /// Parses a frame. `Ok(None)` is a frame of an unknown message type, to be ignored.
    pub fn parse(text: &'a str) -> Result<Option<Frame<'a>>, FrameError> {
        use CallErrorCode::*;
        let parts: Vec<&'a RawValue> = serde_json::from_str(text).map_err(|e| {
            FrameError::new(
                None,
                None,
                FormationViolation,
                format!("not a JSON array: {e}"),
            )
        })?;
        let Some(first) = parts.first() else {
            return Err(FrameError::new(
                None,
                None,
                FormationViolation,
                "empty array",
            ));
        };
        let Ok(message_type) = serde_json::from_str::<u64>(first.get()) else {
            return Err(FrameError::new(
                None,
                None,
                FormationViolation,
                "message type is not a number",
            ));
        };
        let message_type = match u8::try_from(message_type) {
            Ok(t @ (CALL | CALL_RESULT | CALL_ERROR)) => t,
            _ => return Ok(None),
        };
        let t = Some(message_type);
        let Some(id) = parts.get(1).and_then(|raw| string(raw)) else {
            return Err(FrameError::new(
                t,
                None,
                FormationViolation,
                "message id missing or not a string",
            ));
        };
        if id.chars().count() > MAX_ID_LEN {
            // Answered with id -1: an answer carrying the over-long id would be invalid itself.
            return Err(FrameError::new(
                t,
                None,
                FormationViolation,
                format!("message id longer than 36 characters: {id:?}"),
            ));
        }
        let expected = match message_type {
            CALL => 4,
            CALL_RESULT => 3,
            _ => 5,
        };
        if parts.len() < expected {
            let code = if message_type == CALL {
                ProtocolError
            } else {
                FormationViolation
            };
            return Err(FrameError::new(
                t,
                Some(&id),
                code,
                format!("{} elements, {expected} expected", parts.len()),
            ));
        }
        if parts.len() > expected {
            return Err(FrameError::new(
                t,
                Some(&id),
                FormationViolation,
                format!("{} elements, {expected} expected", parts.len()),
            ));
        }
        match message_type {
            CALL => {
                let Some(action) = string(parts[2]) else {
                    return Err(FrameError::new(
                        t,
                        Some(&id),
                        FormationViolation,
                        "action is not a string",
                    ));
                };
                Ok(Some(Frame::Call(Call {
                    id,
                    action,
                    payload: parts[3],
                })))
            }
            CALL_RESULT => Ok(Some(Frame::CallResult {
                id,
                payload: parts[2],
            })),
            _ => {
                let (Some(code), Some(description)) = (string(parts[2]), string(parts[3])) else {
                    return Err(FrameError::new(
                        t,
                        Some(&id),
                        FormationViolation,
                        "errorCode and errorDescription must be strings",
                    ));
                };
                Ok(Some(Frame::CallError {
                    id,
                    code: CallErrorCode::from_wire(&code),
                    description,
                    details: parts[4],
                }))
            }
        }
    }
}

impl Call<'_> {
    /// The action, or the NotImplemented error for an unknown name.
    pub fn action(&self) -> Result<Action, CallError> {
        Action::from_name(&self.action).ok_or_else(|| CallError::not_implemented(&self.action))
    }

    /// Decodes the payload into the typed request of its action.
    pub fn decode(&self, policy: Policy) -> Result<Decoded<Request>, CallError> {
        Request::decode(self.action()?, self.payload.get(), policy).map_err(CallError::from)
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a str always serializes")
}

/// Encodes a CALL; `payload` is the JSON object text of the request.
pub fn call(id: &str, action: Action, payload: &str) -> String {
    format!(
        "[2,{},\"{}\",{}]",
        json_string(id),
        action.as_str(),
        payload
    )
}

/// Encodes a CALLRESULT; `payload` is the JSON object text of the response.
pub fn call_result(id: &str, payload: &str) -> String {
    format!("[3,{},{}]", json_string(id), payload)
}

/// Encodes a CALLERROR; details are `{}` when there are none.
pub fn call_error(id: &str, error: &CallError) -> String {
    let details = serde_json::to_string(&error.details).expect("a JSON map always serializes");
    format!(
        "[4,{},{},{},{}]",
        json_string(id),
        json_string(error.code.as_str()),
        json_string(&error.description),
        details
    )
}
