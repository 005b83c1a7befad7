//! The raw message log of one connection: every frame in and out, with the action of the CALL
//! a CALLRESULT or CALLERROR answers. A pile's new password (ChangeConfiguration
//! AuthorizationKey) is logged as `***`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use transport::{Direction, FrameTap};

use crate::metrics::Metrics;
use crate::store::LogWriter;

pub struct MessageTap {
    pile: String,
    log: LogWriter,
    metrics: Arc<Metrics>,
    /// The action of each CALL not yet answered, by (who sent it, message id).
    open: Mutex<HashMap<(bool, String), String>>,
}

impl MessageTap {
    pub fn new(pile: &str, log: LogWriter, metrics: Arc<Metrics>) -> Self {
        MessageTap {
            pile: pile.to_owned(),
            log,
            metrics,
            open: Mutex::new(HashMap::new()),
        }
    }
}

/// The head of an OCPP-J frame: message type, id, and the action of a CALL (or the error
/// code of a CALLERROR). Payloads are skipped, not decoded.
fn head(text: &str) -> Option<(u64, String, Option<String>)> {
    match ocpp::Frame::parse(text).ok()?? {
        ocpp::Frame::Call(c) => Some((2, c.id.into_owned(), Some(c.action.into_owned()))),
        ocpp::Frame::CallResult { id, .. } => Some((3, id.into_owned(), None)),
        ocpp::Frame::CallError { id, code, .. } => {
            Some((4, id.into_owned(), Some(code.as_str().to_owned())))
        }
    }
}

/// A ChangeConfiguration of the AuthorizationKey (the pile's Basic password) with its value
/// left out; `None` for any other frame.
fn without_secret(text: &str) -> Option<String> {
    let mut frame: serde_json::Value = serde_json::from_str(text).ok()?;
    let payload = frame.get_mut(3)?.as_object_mut()?;
    let key = payload.get("key")?.as_str()?;
    if !key.eq_ignore_ascii_case("AuthorizationKey") {
        return None;
    }
    payload.insert("value".into(), "***".into());
    Some(frame.to_string())
}

impl FrameTap for MessageTap {
    fn frame(&self, direction: Direction, text: &str) {
        let inbound = direction == Direction::In;
        let dir = if inbound { "in" } else { "out" };
        let (action, message_id) = match head(text) {
            Some((2, id, action)) => {
                if let Some(a) = &action {
                    self.open
                        .lock()
                        .expect("tap lock")
                        .insert((inbound, id.clone()), a.clone());
                }
                (action, Some(id))
            }
            Some((kind @ (3 | 4), id, third)) => {
                // An answer travels the other way from its CALL.
                let action = self
                    .open
                    .lock()
                    .expect("tap lock")
                    .remove(&(!inbound, id.clone()));
                if kind == 4 {
                    let code = third.unwrap_or_default();
                    self.metrics
                        .call_errors
                        .get_or_create(&crate::metrics::CodeLabels { code })
                        .inc();
                }
                (action, Some(id))
            }
            Some((_, id, _)) => (None, Some(id)),
            None => (None, None),
        };
        self.metrics
            .message(action.as_deref().unwrap_or("(none)"), dir);
        let hidden = match action.as_deref() {
            Some("ChangeConfiguration") if !inbound => without_secret(text),
            _ => None,
        };
        let text = hidden.as_deref().unwrap_or(text);
        self.log.message(&self.pile, dir, action, message_id, text);
    }
}

#[cfg(test)]
mod tests {
    use super::without_secret;

    #[test]
    fn a_new_authorization_key_is_not_logged() {
        let frame = r#"[2,"cs-1","ChangeConfiguration",{"key":"AuthorizationKey","value":"00ff"}]"#;
        assert_eq!(
            without_secret(frame).as_deref(),
            Some(r#"[2,"cs-1","ChangeConfiguration",{"key":"AuthorizationKey","value":"***"}]"#)
        );
        let other = r#"[2,"cs-2","ChangeConfiguration",{"key":"HeartbeatInterval","value":"60"}]"#;
        assert_eq!(without_secret(other), None);
        assert_eq!(without_secret("not json"), None);
    }
}
