//! OCPP-J 1.6 CallError codes and the mapping of bad input onto them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The errorCode of a CALLERROR, with the spellings the 1.6 wire uses
/// (`FormationViolation`, `OccurenceConstraintViolation`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallErrorCode {
    NotImplemented,
    NotSupported,
    InternalError,
    ProtocolError,
    SecurityError,
    FormationViolation,
    PropertyConstraintViolation,
    OccurenceConstraintViolation,
    TypeConstraintViolation,
    GenericError,
    /// A code outside the 1.6 list received from a peer, kept verbatim.
    Other(String),
}

impl CallErrorCode {
    pub const ALL: &'static [CallErrorCode] = &[
        CallErrorCode::NotImplemented,
        CallErrorCode::NotSupported,
        CallErrorCode::InternalError,
        CallErrorCode::ProtocolError,
        CallErrorCode::SecurityError,
        CallErrorCode::FormationViolation,
        CallErrorCode::PropertyConstraintViolation,
        CallErrorCode::OccurenceConstraintViolation,
        CallErrorCode::TypeConstraintViolation,
        CallErrorCode::GenericError,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            CallErrorCode::NotImplemented => "NotImplemented",
            CallErrorCode::NotSupported => "NotSupported",
            CallErrorCode::InternalError => "InternalError",
            CallErrorCode::ProtocolError => "ProtocolError",
            CallErrorCode::SecurityError => "SecurityError",
            CallErrorCode::FormationViolation => "FormationViolation",
            CallErrorCode::PropertyConstraintViolation => "PropertyConstraintViolation",
            CallErrorCode::OccurenceConstraintViolation => "OccurenceConstraintViolation",
            CallErrorCode::TypeConstraintViolation => "TypeConstraintViolation",
            CallErrorCode::GenericError => "GenericError",
            CallErrorCode::Other(s) => s,
        }
    }

    pub fn from_wire(s: &str) -> CallErrorCode {
        Self::ALL
            .iter()
            .find(|c| c.as_str() == s)
            .cloned()
            .unwrap_or_else(|| CallErrorCode::Other(s.to_owned()))
    }
}

impl fmt::Display for CallErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CallErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CallErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(CallErrorCode::from_wire(&s))
    }
}

/// A CALLERROR's content: what a handler returns to refuse a CALL at the protocol level.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct CallError {
    pub code: CallErrorCode,
    pub description: String,
    /// The errorDetails object; `{}` when there are none.
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl CallError {
    pub fn new(code: CallErrorCode, description: impl Into<String>) -> Self {
        CallError {
            code,
            description: description.into(),
            details: serde_json::Map::new(),
        }
    }
    pub fn not_supported(action: &str) -> Self {
        Self::new(
            CallErrorCode::NotSupported,
            format!("{action} is not supported"),
        )
    }
    pub fn not_implemented(action: &str) -> Self {
        Self::new(
            CallErrorCode::NotImplemented,
            format!("unknown action {action}"),
        )
    }
    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(CallErrorCode::InternalError, description)
    }
}

/// Why a payload could not be decoded into its message type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct PayloadError {
    pub code: CallErrorCode,
    pub description: String,
}

impl PayloadError {
    /// Classifies a serde_json error into the CallError code the OCPP-J specification assigns:
    ///
    /// | cause | code |
    /// |---|---|
    /// | not JSON, not an object, a field the message does not have | FormationViolation |
    /// | a required field missing, an array of the wrong size | OccurenceConstraintViolation |
    /// | a field of the wrong JSON type | TypeConstraintViolation |
    /// | a value outside its range, enumeration, length or format | PropertyConstraintViolation |
    pub fn from_json(err: &serde_json::Error) -> PayloadError {
        use serde_json::error::Category;
        let msg = err.to_string();
        let code = match err.classify() {
            Category::Syntax | Category::Eof | Category::Io => CallErrorCode::FormationViolation,
            Category::Data => {
                if msg.starts_with("missing field") || msg.starts_with("invalid length") {
                    CallErrorCode::OccurenceConstraintViolation
                } else if msg.starts_with("invalid type") {
                    CallErrorCode::TypeConstraintViolation
                } else if msg.starts_with("unknown field") {
                    CallErrorCode::FormationViolation
                } else {
                    CallErrorCode::PropertyConstraintViolation
                }
            }
        };
        PayloadError {
            code,
            description: msg,
        }
    }
}

impl From<PayloadError> for CallError {
    fn from(e: PayloadError) -> Self {
        CallError::new(e.code, e.description)
    }
}
