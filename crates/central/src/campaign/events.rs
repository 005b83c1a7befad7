//! Campaign events between the nodes of a cluster, on `{prefix}.campaigns`: a pile's
//! FirmwareStatusNotification or BootNotification reaches the node that holds the pile's
//! connection, and a cancel the node whose API was asked; the node that runs the campaign
//! applies them. Each node publishes its events in the order they happened (one task, one
//! connection: NATS keeps that order) and skips its own.

use ocpp::FirmwareStatus;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

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

/// Publishes the events handed to `rx`, in order, as `node`.
pub async fn publish(cluster: &Cluster, mut rx: mpsc::UnboundedReceiver<Event>) {
    let subject = subject(cluster);
    while let Some(event) = rx.recv().await {
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
}
