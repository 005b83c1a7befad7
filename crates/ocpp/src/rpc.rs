//! Transport-neutral OCPP-J RPC: correlation of CALLs with their replies, one outstanding
//! outgoing CALL at a time (OCPP-J 4.1.1) with the rest queued in order, timeouts that retire
//! an id for good, and decoding of incoming CALLs. No I/O and no clock: the caller passes the
//! current monotonic time (`now`, any fixed origin) and moves frames in and out.

use std::collections::VecDeque;
use std::time::Duration;

use crate::action::{encode, Action, OcppRequest, Request, Response};
use crate::codec::{Decoded, Policy};
use crate::error::{CallError, PayloadError};
use crate::frame::{self, Frame};

/// Identifies one outgoing CALL for the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// Why an outgoing CALL got no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallFailure {
    #[error("the peer answered with a CALLERROR: {0}")]
    CallError(CallError),
    #[error("the peer's answer does not decode: {0}")]
    BadResponse(PayloadError),
    #[error("no answer within the timeout")]
    Timeout,
    #[error("the connection closed before an answer")]
    Disconnected,
}

/// What an incoming frame means for the application.
#[derive(Debug)]
pub enum Inbound {
    /// A CALL to handle; answer it with [`Endpoint::respond`] or [`Endpoint::respond_error`].
    Call {
        id: String,
        request: Decoded<Request>,
    },
    /// The answer to one of our CALLs.
    Reply {
        ticket: Ticket,
        action: Action,
        outcome: Result<Decoded<Response>, CallFailure>,
    },
    /// Nothing for the application (ignored frame, late or unknown reply, or a bad CALL that
    /// was already answered with a CALLERROR); the text says what happened, for the log.
    Dropped(String),
}

#[derive(Debug)]
struct Outgoing {
    ticket: Ticket,
    action: Action,
    payload: String,
    /// A message id chosen by the caller (kept across retries), or one of ours.
    id: Option<String>,
}

#[derive(Debug)]
struct Pending {
    ticket: Ticket,
    action: Action,
    id: String,
    deadline: Duration,
}

/// How many retired ids are remembered to recognise late replies.
const RETIRED_MEMORY: usize = 64;

/// One side of an OCPP-J connection.
#[derive(Debug)]
pub struct Endpoint {
    policy: Policy,
    timeout: Duration,
    id_prefix: String,
    next: u64,
    pending: Option<Pending>,
    queue: VecDeque<Outgoing>,
    retired: VecDeque<String>,
    transmit: VecDeque<String>,
}

impl Endpoint {
    /// `id_prefix` makes ids unique beyond one endpoint's life (for instance a boot counter).
    pub fn new(policy: Policy, timeout: Duration, id_prefix: impl Into<String>) -> Self {
        Endpoint {
            policy,
            timeout,
            id_prefix: id_prefix.into(),
            next: 1,
            pending: None,
            queue: VecDeque::new(),
            retired: VecDeque::new(),
            transmit: VecDeque::new(),
        }
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Queues a typed CALL.
    pub fn call<R: OcppRequest>(&mut self, request: &R, now: Duration) -> Ticket {
        self.call_raw(R::ACTION, encode(request), now)
    }

    /// Queues a CALL whose payload is already encoded as a JSON object.
    pub fn call_raw(&mut self, action: Action, payload: String, now: Duration) -> Ticket {
        self.enqueue(action, payload, None, now)
    }

    /// Queues a typed CALL under a message id of the caller's (at most 36 characters). A
    /// message that must survive restarts is sent again under the same id, so that the peer
    /// can recognise the repeat.
    pub fn call_with_id<R: OcppRequest>(&mut self, request: &R, id: &str, now: Duration) -> Ticket {
        self.enqueue(R::ACTION, encode(request), Some(id.to_owned()), now)
    }

    fn enqueue(
        &mut self,
        action: Action,
        payload: String,
        id: Option<String>,
        now: Duration,
    ) -> Ticket {
        let ticket = Ticket(self.next);
        self.next += 1;
        self.queue.push_back(Outgoing {
            ticket,
            action,
            payload,
            id,
        });
        self.pump(now);
        ticket
    }

    /// Number of CALLs waiting behind the outstanding one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The action of the outstanding CALL, if any.
    pub fn outstanding(&self) -> Option<(Ticket, Action)> {
        self.pending.as_ref().map(|p| (p.ticket, p.action))
    }

    fn pump(&mut self, now: Duration) {
        if self.pending.is_some() {
            return;
        }
        if let Some(next) = self.queue.pop_front() {
            let id = next
                .id
                .unwrap_or_else(|| format!("{}{}", self.id_prefix, next.ticket.0));
            self.transmit
                .push_back(frame::call(&id, next.action, &next.payload));
            self.pending = Some(Pending {
                ticket: next.ticket,
                action: next.action,
                id,
                deadline: now + self.timeout,
            });
        }
    }

    /// The next frame to write to the connection.
    pub fn poll_transmit(&mut self) -> Option<String> {
        self.transmit.pop_front()
    }

    /// When [`Endpoint::poll_timeout`] next has something to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    /// Retires the outstanding CALL if its time is up, and sends the next one.
    pub fn poll_timeout(&mut self, now: Duration) -> Option<Inbound> {
        let expired = self.pending.as_ref().is_some_and(|p| now >= p.deadline);
        if !expired {
            return None;
        }
        let p = self.pending.take()?;
        self.retire(p.id);
        self.pump(now);
        Some(Inbound::Reply {
            ticket: p.ticket,
            action: p.action,
            outcome: Err(CallFailure::Timeout),
        })
    }

    fn retire(&mut self, id: String) {
        if self.retired.len() == RETIRED_MEMORY {
            self.retired.pop_front();
        }
        self.retired.push_back(id);
    }

    /// Answers an incoming CALL.
    pub fn respond(&mut self, id: &str, response: &Response) {
        self.transmit
            .push_back(frame::call_result(id, &response.to_json()));
    }

    /// Refuses an incoming CALL with a CALLERROR.
    pub fn respond_error(&mut self, id: &str, error: &CallError) {
        self.transmit.push_back(frame::call_error(id, error));
    }

    /// Takes one received text frame.
    pub fn handle_frame(&mut self, text: &str, now: Duration) -> Inbound {
        if let Some((id, value)) = crate::fastpath::call(text) {
            return Inbound::Call {
                id,
                request: Decoded {
                    value,
                    deviations: Vec::new(),
                },
            };
        }
        let parsed = match Frame::parse(text) {
            Ok(Some(f)) => f,
            Ok(None) => return Inbound::Dropped("frame of unknown message type ignored".into()),
            Err(e) => {
                if let Some(answer) = e.answer() {
                    self.transmit.push_back(answer);
                    return Inbound::Dropped(format!("bad frame answered with CALLERROR: {e}"));
                }
                return self.reply_error_for(e.id.as_deref(), CallFailure::CallError(e.error), now);
            }
        };
        match parsed {
            Frame::Call(call) => match call.decode(self.policy) {
                Ok(request) => Inbound::Call {
                    id: call.id.into_owned(),
                    request,
                },
                Err(error) => {
                    self.transmit.push_back(frame::call_error(&call.id, &error));
                    Inbound::Dropped(format!("CALL {} {} refused: {error}", call.id, call.action))
                }
            },
            Frame::CallResult { id, payload } => {
                let Some(p) = self.take_pending(&id) else {
                    return self.unmatched(&id);
                };
                let outcome = Response::decode(p.action, payload.get(), self.policy)
                    .map_err(CallFailure::BadResponse);
                self.pump(now);
                Inbound::Reply {
                    ticket: p.ticket,
                    action: p.action,
                    outcome,
                }
            }
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => {
                let mut error = CallError::new(code, description);
                if let Ok(map) = serde_json::from_str(details.get()) {
                    error.details = map;
                }
                self.reply_error_for(Some(&id), CallFailure::CallError(error), now)
            }
        }
    }

    fn reply_error_for(
        &mut self,
        id: Option<&str>,
        failure: CallFailure,
        now: Duration,
    ) -> Inbound {
        let Some(id) = id else {
            return Inbound::Dropped(format!("unreadable reply dropped: {failure}"));
        };
        let Some(p) = self.take_pending(id) else {
            return self.unmatched(id);
        };
        self.pump(now);
        Inbound::Reply {
            ticket: p.ticket,
            action: p.action,
            outcome: Err(failure),
        }
    }

    fn take_pending(&mut self, id: &str) -> Option<Pending> {
        if self.pending.as_ref().is_some_and(|p| p.id == id) {
            let p = self.pending.take()?;
            self.retire(p.id.clone());
            Some(p)
        } else {
            None
        }
    }

    fn unmatched(&self, id: &str) -> Inbound {
        if self.retired.iter().any(|r| r == id) {
            Inbound::Dropped(format!("late reply to retired id {id} dropped"))
        } else {
            Inbound::Dropped(format!("reply with unknown id {id} dropped"))
        }
    }

    /// The connection is gone: every outstanding and queued CALL fails, unsent frames are
    /// discarded. Returns the failed calls.
    pub fn disconnect(&mut self) -> Vec<(Ticket, Action)> {
        self.transmit.clear();
        let mut failed: Vec<(Ticket, Action)> = Vec::new();
        if let Some(p) = self.pending.take() {
            failed.push((p.ticket, p.action));
            self.retire(p.id);
        }
        failed.extend(self.queue.drain(..).map(|o| (o.ticket, o.action)));
        failed
    }
}
