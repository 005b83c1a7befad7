//! The pile's local control channel: what the pile shows of itself (`PileState`), and the
//! handle through which the control port provisions keys and reads that state.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ocpp::ConfigurationStatus;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::hardware::Pilot;
use crate::NetState;

/// What the pile shows of itself (the control port's `GET /state`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PileState {
    pub serial_number: String,
    pub identity: String,
    pub connection: ConnectionState,
    pub connectors: Vec<ConnectorState>,
    pub faults: Vec<&'static str>,
    /// Transaction messages waiting for the central system.
    pub outbox: usize,
    pub network: NetState,
    /// Every configuration key, vendor keys included.
    pub configuration: BTreeMap<&'static str, String>,
    pub firmware: FirmwareState,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ConnectionState {
    pub url: String,
    pub connected: bool,
    pub accepted: bool,
    pub online: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectorState {
    pub id: u32,
    pub status: String,
    pub plugged: bool,
    /// The control pilot's state (A no EV, B connected, C asking for energy, E/F error).
    pub pilot: Pilot,
    /// The current the pilot offers (A), when the pile lets the EV draw.
    pub offered_a: Option<f64>,
    pub relay_closed: bool,
    /// The meter register (Wh).
    pub energy_wh: i64,
    pub transaction: Option<TransactionState>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TransactionState {
    pub id_tag: String,
    /// The central's transactionId, once it answered StartTransaction.
    pub transaction_id: Option<i32>,
    pub meter_start: i64,
    pub started: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FirmwareState {
    pub version: String,
    pub status: String,
    pub percent: u8,
}

/// What the control channel asks of the pile's loop.
pub(super) enum Command {
    Provision {
        key: String,
        value: String,
        reply: oneshot::Sender<ConfigurationStatus>,
    },
    State {
        reply: oneshot::Sender<PileState>,
    },
}

/// Commands for a pile, waiting to be taken: a queue that takes no memory while empty (a
/// fleet has one per pile), closed when the last handle is gone.
#[derive(Default)]
struct Mailbox {
    queue: std::sync::Mutex<VecDeque<Command>>,
    wake: tokio::sync::Notify,
    handles: std::sync::atomic::AtomicUsize,
    /// The pile no longer runs: what is sent is dropped (its reply with it).
    closed: std::sync::atomic::AtomicBool,
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Command>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next command; `None` once every handle is gone and nothing is left.
    async fn recv(&self) -> Option<Command> {
        use std::sync::atomic::Ordering;
        loop {
            if let Some(command) = self.lock().pop_front() {
                return Some(command);
            }
            if self.handles.load(Ordering::Acquire) == 0 {
                return None;
            }
            self.wake.notified().await;
        }
    }
}

/// Talks to a running pile from the outside (the control port). Commands are taken in turn
/// with everything else the pile does, so an answer reflects every event before it.
pub struct PileHandle {
    mailbox: Arc<Mailbox>,
}

impl Clone for PileHandle {
    fn clone(&self) -> Self {
        self.mailbox
            .handles
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        PileHandle {
            mailbox: self.mailbox.clone(),
        }
    }
}

impl Drop for PileHandle {
    fn drop(&mut self) {
        let left = self
            .mailbox
            .handles
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        if left == 1 {
            self.mailbox.wake.notify_one();
        }
    }
}

impl PileHandle {
    pub(super) fn send(&self, command: Command) {
        let mut queue = self.mailbox.lock();
        // Checked under the lock the pile's end takes too: nothing is left waiting.
        if !self
            .mailbox
            .closed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            queue.push_back(command);
        }
        drop(queue);
        self.mailbox.wake.notify_one();
    }

    /// Sets a key at the pile (the local provisioning path): ChangeConfiguration's rules.
    pub async fn provision(&self, key: &str, value: &str) -> Option<ConfigurationStatus> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Provision {
            key: key.into(),
            value: value.into(),
            reply,
        });
        rx.await.ok()
    }

    /// What the pile shows now; `None` when it no longer runs.
    pub async fn state(&self) -> Option<PileState> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::State { reply });
        rx.await.ok()
    }
}

/// The receiving end of a [`PileHandle`], for [`run`].
pub struct Control {
    mailbox: Arc<Mailbox>,
}

impl Control {
    /// The next command; None once every handle is gone.
    pub(super) async fn recv(&self) -> Option<Command> {
        self.mailbox.recv().await
    }
}

impl Drop for Control {
    /// The pile stops: commands waiting, and any sent later, are dropped, so that their
    /// senders learn it (`None`) instead of waiting for ever.
    fn drop(&mut self) {
        let mut queue = self.mailbox.lock();
        self.mailbox
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        let left = std::mem::take(&mut *queue);
        drop(queue);
        drop(left);
    }
}

pub fn control_channel() -> (PileHandle, Control) {
    let mailbox = Arc::new(Mailbox {
        handles: std::sync::atomic::AtomicUsize::new(1),
        ..Mailbox::default()
    });
    (
        PileHandle {
            mailbox: mailbox.clone(),
        },
        Control { mailbox },
    )
}
