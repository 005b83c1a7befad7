//! What nodes send each other over NATS, as JSON: a CALL for a pile and its answer, the answer
//! to a takeover, a change for the dashboards.

use ocpp::{Action, CallError, CallErrorCode, Decoded, Policy, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::sessions::DeliveryError;

/// `{prefix}.pile.{token}.call`: a CALL for the pile, to its owner.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallRequest {
    pub action: String,
    /// The CALL's payload, as JSON text.
    pub payload: String,
}

/// The owner's answer: the pile's CALLRESULT payload, or why there is none.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallReply {
    Ok(Box<RawValue>),
    Error(CallFailed),
}

/// Why the owner has no CALLRESULT to give.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallFailed {
    CallError { code: String, description: String },
    Timeout,
    Disconnected,
    BadResponse { why: String },
    NotConnected,
    Unavailable { why: String },
}

impl CallReply {
    /// The owner's answer to send for what its pile answered.
    pub fn of(outcome: Result<Decoded<Response>, DeliveryError>) -> CallReply {
        match outcome {
            Ok(answer) => match RawValue::from_string(answer.value.to_json()) {
                Ok(raw) => CallReply::Ok(raw),
                Err(e) => CallReply::Error(CallFailed::BadResponse { why: e.to_string() }),
            },
            Err(e) => CallReply::Error(match e {
                DeliveryError::CallError(e) => CallFailed::CallError {
                    code: e.code.as_str().to_owned(),
                    description: e.description,
                },
                DeliveryError::Timeout => CallFailed::Timeout,
                DeliveryError::Disconnected => CallFailed::Disconnected,
                DeliveryError::BadResponse(why) => CallFailed::BadResponse { why },
                DeliveryError::NotConnected => CallFailed::NotConnected,
                DeliveryError::Unavailable(why) => CallFailed::Unavailable { why },
            }),
        }
    }

    /// What the requester makes of the owner's answer to a CALL of `action`.
    pub fn outcome(self, action: Action) -> Result<Decoded<Response>, DeliveryError> {
        match self {
            CallReply::Ok(raw) => Response::decode(action, raw.get(), Policy::Lenient)
                .map_err(|e| DeliveryError::BadResponse(e.to_string())),
            CallReply::Error(CallFailed::CallError { code, description }) => {
                Err(DeliveryError::CallError(CallError::new(
                    CallErrorCode::from_wire(&code),
                    description,
                )))
            }
            CallReply::Error(CallFailed::Timeout) => Err(DeliveryError::Timeout),
            CallReply::Error(CallFailed::Disconnected) => Err(DeliveryError::Disconnected),
            CallReply::Error(CallFailed::BadResponse { why }) => {
                Err(DeliveryError::BadResponse(why))
            }
            CallReply::Error(CallFailed::NotConnected) => Err(DeliveryError::NotConnected),
            CallReply::Error(CallFailed::Unavailable { why }) => {
                Err(DeliveryError::Unavailable(why))
            }
        }
    }
}

/// `{prefix}.pile.{token}.close`: why the pile's connection must close.
#[derive(Debug, Serialize, Deserialize)]
pub struct CloseRequest {
    /// The pile was deleted (else: a newer connection of it lives on the asking node).
    #[serde(default)]
    pub deleted: bool,
    /// The node that asks (its own subscription hears the request too, and ignores it).
    #[serde(default)]
    pub from: Option<String>,
    /// When the asking node's connection of the pile began (ms): of two connections whose
    /// handshakes completed at once on two nodes, the older closes, the newer stays.
    #[serde(default)]
    pub since: Option<i64>,
}

/// `{prefix}.pile.{token}.close`: the old owner's answer once the pile's connection there is
/// closed and its end written.
#[derive(Debug, Serialize, Deserialize)]
pub struct Closed {
    /// The node that held it.
    pub node: String,
    /// Where that connection came from.
    pub remote: String,
}

/// `{prefix}.changes`: a change of the dashboards' live pages, and the node it happened on.
#[derive(Debug, Serialize, Deserialize)]
pub struct Change {
    pub node: String,
    pub what: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocpp::{ResetResponse, ResetStatus};

    #[test]
    fn answers_cross_nodes_unchanged() {
        let answer = Response::Reset(ResetResponse {
            status: ResetStatus::Accepted,
        });
        let reply = CallReply::of(Ok(Decoded {
            value: answer.clone(),
            deviations: Vec::new(),
        }));
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(text, r#"{"ok":{"status":"Accepted"}}"#);
        let back: CallReply = serde_json::from_str(&text).unwrap();
        assert_eq!(back.outcome(Action::Reset).unwrap().value, answer);
    }

    #[test]
    fn failures_cross_nodes_unchanged() {
        for failure in [
            DeliveryError::NotConnected,
            DeliveryError::Timeout,
            DeliveryError::Disconnected,
            DeliveryError::BadResponse("no status".into()),
            DeliveryError::Unavailable("no server".into()),
            DeliveryError::CallError(CallError::new(CallErrorCode::NotSupported, "no")),
        ] {
            let text = serde_json::to_string(&CallReply::of(Err(failure.clone()))).unwrap();
            let back: CallReply = serde_json::from_str(&text).unwrap();
            assert_eq!(back.outcome(Action::Reset).unwrap_err(), failure, "{text}");
        }
        let text = serde_json::to_string(&CallReply::of(Err(DeliveryError::Timeout))).unwrap();
        assert_eq!(text, r#"{"error":{"kind":"timeout"}}"#);
    }
}
