//! The central system on several nodes: every node shares one database and one NATS server.
//! A [`Cluster`] is this node's link to the others: its name, its NATS client, and the subjects
//! of this cluster (prefixed with the cluster's id, which the first node stored in the
//! database: every node of one database uses the same subjects, and two clusters sharing one
//! NATS server never see each other's messages).

mod changes;
pub mod heartbeat;
pub mod lease;
pub mod owner;
mod routing;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use routing::{delivery, online, Online, Route};

use crate::store::{Repository, StoreError};
use crate::Central;

/// How long a node waits for the NATS server at its start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("no NATS server answers at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
}

/// This node's place in the cluster.
pub struct Cluster {
    node: String,
    nats: async_nats::Client,
    /// `ocpile.{cluster id}`.
    prefix: String,
    /// The piles whose subjects this node answers.
    owned: owner::Owned,
    /// The dashboards' changes on their way to the other nodes.
    outbox: changes::Outbox,
}

impl Cluster {
    /// Connects to the NATS server at `url` as `node`, with the cluster's id from the store
    /// (stored by the first node to start).
    pub async fn join(
        url: &str,
        node: &str,
        repo: &dyn Repository,
    ) -> Result<Cluster, ClusterError> {
        let id = repo
            .init_setting("cluster_id", &crate::secrets::new_token()[..12])
            .await?;
        let nats = async_nats::ConnectOptions::new()
            .name(format!("ocpile central {node}"))
            .connection_timeout(CONNECT_TIMEOUT)
            // What this node publishes never comes back to its own subscriptions: a pile's
            // close request (asked once the asking node subscribed to the pile's subjects
            // itself) gets "no responders" at once when no other node holds the pile.
            .no_echo()
            .connect(url)
            .await
            .map_err(|e| ClusterError::Unreachable {
                url: url.to_owned(),
                why: e.to_string(),
            })?;
        let prefix = format!("ocpile.{}", subject_token(&id));
        let outbox =
            changes::Outbox::start(nats.clone(), node.to_owned(), format!("{prefix}.changes"));
        Ok(Cluster {
            node: node.to_owned(),
            nats,
            prefix,
            owned: owner::Owned::default(),
            outbox,
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether the link to the NATS server is up (it reconnects by itself when it drops).
    pub fn is_connected(&self) -> bool {
        self.nats.connection_state() == async_nats::connection::State::Connected
    }

    /// The NATS client.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// The subject `{prefix}.{leaf}` (a leaf such as `changes` or `campaigns`).
    pub fn subject(&self, leaf: &str) -> String {
        format!("{}.{leaf}", self.prefix)
    }

    /// The subject `{prefix}.pile.{identity}.{leaf}` of one pile (`call`, `close`).
    pub fn pile_subject(&self, pile: &str, leaf: &str) -> String {
        format!("{}.pile.{}.{leaf}", self.prefix, subject_token(pile))
    }

    /// Asks the node that holds `pile` on its subject `leaf` (`call`, `close`), `body` in JSON:
    /// its answer, or why none came within `wait`.
    pub async fn ask_pile(
        &self,
        pile: &str,
        leaf: &str,
        body: &impl serde::Serialize,
        wait: Duration,
    ) -> Result<async_nats::Message, async_nats::RequestError> {
        let request = async_nats::Request::new()
            .payload(serde_json::to_vec(body).expect("JSON").into())
            .timeout(Some(wait));
        self.nats
            .send_request(self.pile_subject(pile, leaf), request)
            .await
    }

    /// The subject `{prefix}.node.{node}.{leaf}` of one node.
    pub fn node_subject(&self, node: &str, leaf: &str) -> String {
        format!("{}.node.{}.{leaf}", self.prefix, subject_token(node))
    }

    /// Publishes `payload` on `subject` (nothing waits for a receiver).
    pub async fn publish(&self, subject: String, payload: Vec<u8>) -> Result<(), ClusterError> {
        self.nats
            .publish(subject, payload.into())
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))
    }

    /// Waits until the NATS server has taken what this node sent before (its subscriptions
    /// included: the other nodes' messages reach them from then on). A flush only writes; a
    /// request nobody answers comes back, as "no responders", once the server has read it.
    pub async fn settle(&self) -> Result<(), ClusterError> {
        let request = async_nats::Request::new()
            .payload(Vec::new().into())
            .timeout(Some(CONNECT_TIMEOUT));
        match self
            .nats
            .send_request(self.node_subject(&self.node, "settle"), request)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(ClusterError::Nats(e.to_string())),
        }
    }

    /// Tells the other nodes' live pages that something changed (the caller never waits).
    pub fn share_change(&self, what: &str) {
        self.outbox.share(what);
    }
}

/// What a node runs beside its listener: its heartbeat (alone too) and, in a cluster, the
/// other nodes' changes followed.
pub async fn start(central: &Arc<Central>, address: SocketAddr) -> Result<(), ClusterError> {
    heartbeat::start(central, address).await?;
    changes::follow(central).await
}

/// A text as one NATS subject token: every byte outside `[A-Za-z0-9_-]` as `~XX` (hex), so
/// that dots, wildcards and spaces in an identity cannot change the subject's shape, and two
/// identities never share a token.
pub fn subject_token(text: &str) -> String {
    let mut token = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            token.push(char::from(b));
        } else {
            token.push_str(&format!("~{b:02X}"));
        }
    }
    token
}

/// Whether `name` may name a node: letters, digits, `-` and `_`, 1 to 64 of them.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The name a node takes without `--node`: the host's name and the process id.
pub fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    let mut name = format!("{host}-{}", std::process::id());
    name.truncate(64);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_subjects_in_shape() {
        assert_eq!(subject_token("CP-001_a"), "CP-001_a");
        assert_eq!(subject_token("a.b *>"), "a~2Eb~20~2A~3E");
        assert_eq!(subject_token("~"), "~7E");
        // Two identities never share a token.
        assert_ne!(subject_token("a.b"), subject_token("a~2Eb"));
        assert_eq!(subject_token("é"), "~C3~A9");
    }

    #[test]
    fn node_names() {
        assert!(valid_node_name("node-1_a"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("a.b"));
        assert!(!valid_node_name(&"x".repeat(65)));
        assert!(valid_node_name(&default_node_name()));
    }
}
