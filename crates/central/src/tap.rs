//! The raw message log of one connection: every frame in and out, with the action of the CALL
//! a CALLRESULT or CALLERROR answers.

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
        self.log.message(&self.pile, dir, action, message_id, text);
    }
}
