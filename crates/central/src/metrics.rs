//! `/metrics` in the Prometheus text format; every series of a node carries its name as the
//! label `node`.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub action: String,
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

/// A site: its id and its name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    pub site: String,
    pub site_name: String,
}

/// What a site's gauges show: A per phase.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteFigures {
    pub id: i64,
    pub name: String,
    /// The capacity in force now (the schedule's limit, if one applies).
    pub capacity_a: f64,
    /// The sum of what the allocator last granted the running sessions.
    pub granted_a: f64,
    /// The sum of the running sessions' last Current.Import.
    pub measured_a: f64,
}

type FloatGauge = Gauge<f64, AtomicU64>;

pub struct Metrics {
    registry: Registry,
    site_capacity: Family<SiteLabels, FloatGauge>,
    site_granted: Family<SiteLabels, FloatGauge>,
    site_measured: Family<SiteLabels, FloatGauge>,
    pub connected_piles: Gauge,
    pub messages: Family<MessageLabels, Counter>,
    pub call_errors: Family<CodeLabels, Counter>,
    pub refused_handshakes: Family<ReasonLabels, Counter>,
    pub handshakes_in_progress: Gauge,
    pub disconnections: Family<ReasonLabels, Counter>,
    pub command_latency: Family<ActionLabels, Histogram>,
    pub commit_latency: Histogram,
    pub commit_batch_size: Histogram,
    pub store_queue: Gauge,
    pub log_queue: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub commands_waiting: Gauge<u64, AtomicU64>,
    pub firmware_downloads: Counter,
    /// Every frame counted in `messages`, for the dashboard's messages per second.
    frames: AtomicU64,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

impl Default for Metrics {
    /// The metrics without a `node` label.
    fn default() -> Self {
        Metrics::with_registry(Registry::with_prefix("ocpile"))
    }
}

impl Metrics {
    /// The metrics of a node: every series labelled `node="NAME"`.
    pub fn of_node(node: &str) -> Metrics {
        let label = (Cow::Borrowed("node"), Cow::Owned(node.to_owned()));
        Metrics::with_registry(Registry::with_prefix_and_labels(
            "ocpile",
            std::iter::once(label),
        ))
    }

    fn with_registry(mut registry: Registry) -> Metrics {
        let m = Metrics {
            connected_piles: Gauge::default(),
            messages: Family::default(),
            call_errors: Family::default(),
            refused_handshakes: Family::default(),
            handshakes_in_progress: Gauge::default(),
            disconnections: Family::default(),
            command_latency: Family::new_with_constructor(latency_histogram),
            commit_latency: latency_histogram(),
            commit_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            store_queue: Gauge::default(),
            log_queue: Gauge::default(),
            commands_waiting: Gauge::default(),
            firmware_downloads: Counter::default(),
            frames: AtomicU64::new(0),
            site_capacity: Family::default(),
            site_granted: Family::default(),
            site_measured: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connected_piles",
            "Piles connected now",
            m.connected_piles.clone(),
        );
        registry.register(
            "firmware_downloads",
            "Firmware images served to piles",
            m.firmware_downloads.clone(),
        );
        registry.register(
            "messages",
            "OCPP frames by action and direction",
            m.messages.clone(),
        );
        registry.register(
            "call_errors",
            "CALLERRORs sent and received, by code",
            m.call_errors.clone(),
        );
        registry.register(
            "refused_handshakes",
            "Connections refused before or at the websocket handshake, by reason",
            m.refused_handshakes.clone(),
        );
        registry.register(
            "handshakes_in_progress",
            "Connections accepted that have not sent a complete HTTP request yet",
            m.handshakes_in_progress.clone(),
        );
        registry.register(
            "disconnections",
            "Pile connections that ended, by reason (ping_timeout: a dead link)",
            m.disconnections.clone(),
        );
        registry.register(
            "command_latency_seconds",
            "Commands from the API to the pile's answer",
            m.command_latency.clone(),
        );
        registry.register(
            "store_commit_latency_seconds",
            "Time of one group commit",
            m.commit_latency.clone(),
        );
        registry.register(
            "store_commit_batch_size",
            "Writes per group commit",
            m.commit_batch_size.clone(),
        );
        registry.register(
            "store_queue_depth",
            "Writes waiting for the next commit",
            m.store_queue.clone(),
        );
        registry.register(
            "message_log_queue_depth",
            "Log rows waiting to be written",
            m.log_queue.clone(),
        );
        registry.register(
            "commands_waiting",
            "API commands waiting for a pile's answer",
            m.commands_waiting.clone(),
        );
        registry.register(
            "site_capacity_amperes",
            "A site's capacity in force, A per phase",
            m.site_capacity.clone(),
        );
        registry.register(
            "site_granted_amperes",
            "The sum of the limits granted to a site's running sessions, A per phase",
            m.site_granted.clone(),
        );
        registry.register(
            "site_measured_amperes",
            "The sum of a site's running sessions' last Current.Import, A per phase",
            m.site_measured.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Sets the sites' gauges to these figures; a site not among them loses its series.
    pub fn set_sites(&self, sites: &[SiteFigures]) {
        for family in [&self.site_capacity, &self.site_granted, &self.site_measured] {
            family.clear();
        }
        for s in sites {
            let labels = SiteLabels {
                site: s.id.to_string(),
                site_name: s.name.clone(),
            };
            self.site_capacity.get_or_create(&labels).set(s.capacity_a);
            self.site_granted.get_or_create(&labels).set(s.granted_a);
            self.site_measured.get_or_create(&labels).set(s.measured_a);
        }
    }

    pub fn observe_commit(&self, took: Duration, batch: usize) {
        self.commit_latency.observe(took.as_secs_f64());
        self.commit_batch_size.observe(batch as f64);
    }

    pub fn message(&self, action: &str, direction: &str) {
        self.messages
            .get_or_create(&MessageLabels {
                action: action.to_owned(),
                direction: direction.to_owned(),
            })
            .inc();
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// The frames counted since the start.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_of_a_node_carries_its_name() {
        let metrics = Metrics::of_node("east-1");
        metrics.message("Heartbeat", "in");
        metrics.connected_piles.set(3);
        metrics.observe_commit(Duration::from_millis(2), 5);
        let text = metrics.encode();
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .collect();
        assert!(samples.len() > 20, "{text}");
        for line in samples {
            assert!(line.contains("node=\"east-1\""), "{line}");
        }
        assert!(
            text.contains(
                "ocpile_messages_total{node=\"east-1\",action=\"Heartbeat\",direction=\"in\"} 1"
            ) || text.contains(
                "ocpile_messages_total{action=\"Heartbeat\",direction=\"in\",node=\"east-1\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("ocpile_connected_piles{node=\"east-1\"} 3"),
            "{text}"
        );
    }

    #[test]
    fn a_site_removed_loses_its_series() {
        let metrics = Metrics::default();
        let depot = SiteFigures {
            id: 1,
            name: "Depot".into(),
            capacity_a: 63.0,
            granted_a: 51.0,
            measured_a: 40.5,
        };
        let yard = SiteFigures {
            id: 2,
            name: "Yard".into(),
            ..depot.clone()
        };
        metrics.set_sites(&[depot, yard.clone()]);
        let text = metrics.encode();
        for line in [
            "ocpile_site_capacity_amperes{site=\"1\",site_name=\"Depot\"} 63.0",
            "ocpile_site_granted_amperes{site=\"1\",site_name=\"Depot\"} 51.0",
            "ocpile_site_measured_amperes{site=\"1\",site_name=\"Depot\"} 40.5",
            "ocpile_site_capacity_amperes{site=\"2\",site_name=\"Yard\"} 63.0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        metrics.set_sites(&[yard]);
        let text = metrics.encode();
        assert!(!text.contains("site_name=\"Depot\""), "{text}");
        assert!(text.contains("site_name=\"Yard\""), "{text}");
    }
}
