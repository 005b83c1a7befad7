//! The remote log stream of DBGEnableInsight (FAQ 3.7): while the key names a broker
//! (`host,port`), the pile publishes what it does (every OCPP frame in and out, connections and
//! restarts) over MQTT, one JSON object a message, to the topic `ocpile/<serial>/insight`.
//! Port 8883 is MQTT over TLS (with the pile's CA); any other port is plain MQTT. Messages are
//! sent at most once and dropped while the broker cannot be reached: the log never holds the
//! pile back.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS, TlsConfiguration, Transport};
use serde_json::json;
use tokio::task::JoinHandle;

/// How many messages wait for the broker before new ones are dropped.
const BACKLOG: usize = 256;

/// A running log stream; it stops when dropped.
pub struct Insight {
    client: AsyncClient,
    topic: String,
    task: JoinHandle<()>,
}

impl Insight {
    /// Starts streaming to `host:port`; `None` when TLS (port 8883) is asked for without a CA.
    pub fn start(
        serial: &str,
        host: &str,
        port: u16,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Option<Insight> {
        let mut options = MqttOptions::new(format!("ocpile-{serial}"), host, port);
        options.set_keep_alive(Duration::from_secs(30));
        if port == 8883 {
            let Some(config) = tls else {
                tracing::warn!("DBGEnableInsight {host},{port}: TLS needs --ca; not streaming");
                return None;
            };
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
        }
        let (client, mut events) = AsyncClient::new(options, BACKLOG);
        let task = tokio::spawn(async move {
            loop {
                if let Err(e) = events.poll().await {
                    tracing::debug!("insight broker: {e}");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        });
        tracing::info!(host, port, "insight log stream on");
        Some(Insight {
            client,
            topic: format!("ocpile/{serial}/insight"),
            task,
        })
    }

    /// Publishes one record (`kind`: `send`, `receive`, `event`).
    pub fn log(&self, time: chrono::DateTime<chrono::Utc>, kind: &str, text: &str) {
        let record = json!({
            "time": time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "kind": kind,
            "text": text,
        });
        // Dropped, not waited for, when the backlog is full.
        let _ = self.client.try_publish(
            self.topic.clone(),
            QoS::AtMostOnce,
            false,
            record.to_string(),
        );
    }
}

impl Drop for Insight {
    fn drop(&mut self) {
        self.task.abort();
    }
}
