//! Campaign events between the nodes of a cluster, on `{prefix}.campaigns`: a pile's
//! FirmwareStatusNotification or BootNotification reaches the node that holds the pile's
//! connection, and a cancel the node whose API was asked; the node that runs the campaign
//! applies them. Each node publishes its events in the order they happened (one task, one
//! connection: NATS keeps that order) and skips its own. While NATS is out of reach the events
//! wait in a [`Backlog`] of bounded length, which drops the oldest (a campaign's state is in
//! the database; the node that runs it notices a pile it heard nothing from).

use std::collections::VecDeque;
use std::sync::Mutex;

use ocpp::{FirmwareStatus, FirmwareStatusSigned};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::cluster::Cluster;

/// What another node's campaign may need to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A pile's FirmwareStatusNotification, answered by the node that holds it.
    FirmwareStatus {
        pile: String,
        status: FirmwareStatus,
    },
    /// A pile's SignedFirmwareStatusNotification, with the `requestId` it names.
    SignedFirmwareStatus {
        pile: String,
        status: FirmwareStatusSigned,
        request_id: Option<i32>,
    },
    /// A pile's BootNotification, with the version it now runs.
    Boot {
        pile: String,
        version: Option<String>,
    },
    /// A cancel asked through another node's API (already recorded in the store).
    Cancel { campaign: i64 },
}

/// An event as it travels: with the node that saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub node: String,
    #[serde(flatten)]
    pub event: Event,
}

/// The subject of the campaign events.
pub fn subject(cluster: &Cluster) -> String {
    cluster.subject("campaigns")
}

/// How many events wait for NATS at most.
pub const BACKLOG: usize = 4096;

/// Events waiting to be published, at most a given number: past it the oldest is dropped.
pub struct Backlog {
    queue: Mutex<Waiting>,
    more: Notify,
    limit: usize,
}

#[derive(Default)]
struct Waiting {
    events: VecDeque<Event>,
    /// Events dropped since the backlog was last empty.
    dropped: u64,
}

impl Backlog {
    pub fn new(limit: usize) -> Backlog {
        Backlog {
            queue: Mutex::new(Waiting::default()),
            more: Notify::new(),
            limit: limit.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.queue.lock().expect("backlog lock")
    }

    /// Queues an event; when the backlog is full, the oldest waiting is dropped (logged at the
    /// first drop and every thousandth after it).
    pub fn push(&self, event: Event) {
        let mut waiting = self.lock();
        if waiting.events.len() >= self.limit {
            waiting.events.pop_front();
            waiting.dropped += 1;
            if waiting.dropped % 1000 == 1 {
                tracing::warn!(
                    dropped = waiting.dropped,
                    "campaign events: {} wait for NATS; the oldest are dropped",
                    self.limit
                );
            }
        }
        waiting.events.push_back(event);
        drop(waiting);
        self.more.notify_one();
    }

    /// The oldest event waiting, once there is one.
    pub async fn next(&self) -> Event {
        loop {
            let notified = self.more.notified();
            {
                let mut waiting = self.lock();
                if let Some(event) = waiting.events.pop_front() {
                    if waiting.events.is_empty() && waiting.dropped > 0 {
                        tracing::info!(
                            dropped = waiting.dropped,
                            "campaign events: the backlog is sent"
                        );
                        waiting.dropped = 0;
                    }
                    return event;
                }
            }
            notified.await;
        }
    }

    /// How many events wait.
    pub fn waiting(&self) -> usize {
        self.lock().events.len()
    }
}

/// Publishes the events of `backlog`, in order, as this node: never returns.
pub async fn publish(cluster: &Cluster, backlog: &Backlog) {
    let subject = subject(cluster);
    loop {
        let event = backlog.next().await;
        let envelope = Envelope {
            node: cluster.node().to_owned(),
            event,
        };
        let payload = serde_json::to_vec(&envelope).expect("an event serializes");
        if let Err(e) = cluster.publish(subject.clone(), payload).await {
            tracing::warn!("campaign event {:?} not published: {e}", envelope.event);
        }
    }
}

/// Another node's event in a message; none for this node's own, or one that does not parse
/// (logged).
pub fn read(own_node: &str, payload: &[u8]) -> Option<Event> {
    match serde_json::from_slice::<Envelope>(payload) {
        Ok(envelope) if envelope.node == own_node => None,
        Ok(envelope) => Some(envelope.event),
        Err(e) => {
            tracing::warn!("a campaign event that does not parse: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot(pile: &str) -> Event {
        Event::Boot {
            pile: pile.into(),
            version: None,
        }
    }

    #[tokio::test]
    async fn a_full_backlog_drops_the_oldest_and_keeps_the_order() {
        let backlog = Backlog::new(3);
        for pile in ["P1", "P2", "P3", "P4", "P5"] {
            backlog.push(boot(pile));
        }
        assert_eq!(backlog.waiting(), 3);
        for pile in ["P3", "P4", "P5"] {
            assert_eq!(backlog.next().await, boot(pile));
        }
        assert_eq!(backlog.waiting(), 0);
        // The next one waits for a push.
        let waiting = backlog.next();
        tokio::pin!(waiting);
        assert!(futures_util::FutureExt::now_or_never(&mut waiting).is_none());
        backlog.push(boot("P6"));
        assert_eq!(waiting.await, boot("P6"));
    }

    #[test]
    fn events_travel_as_json_and_a_node_skips_its_own() {
        let envelope = Envelope {
            node: "a".into(),
            event: Event::FirmwareStatus {
                pile: "CP.1".into(),
                status: FirmwareStatus::Downloading,
            },
        };
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"node": "a", "event": "firmware_status", "pile": "CP.1",
                "status": "Downloading"})
        );
        let bytes = serde_json::to_vec(&envelope).unwrap();
        assert_eq!(read("a", &bytes), None);
        assert_eq!(read("b", &bytes), Some(envelope.event));
        let cancel = br#"{"node": "a", "event": "cancel", "campaign": 7}"#;
        assert_eq!(read("b", cancel), Some(Event::Cancel { campaign: 7 }));
        assert_eq!(read("b", b"{\"node\": \"a\", \"event\": \"reboot\"}"), None);
        assert_eq!(read("b", b"not json"), None);
    }

    #[test]
    fn a_signed_status_travels_with_its_request_id() {
        let event = Event::SignedFirmwareStatus {
            pile: "CP.1".into(),
            status: FirmwareStatusSigned::InvalidSignature,
            request_id: Some(42),
        };
        let bytes = serde_json::to_vec(&Envelope {
            node: "a".into(),
            event: event.clone(),
        })
        .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            serde_json::json!({"node": "a", "event": "signed_firmware_status", "pile": "CP.1",
                "status": "InvalidSignature", "request_id": 42})
        );
        assert_eq!(read("b", &bytes), Some(event));
    }
}
