//! Connections before their first HTTP request. Each has `--handshake-timeout` from the TCP
//! accept to complete its TLS handshake and send a whole request head; at most
//! `--max-handshakes-per-address` are in progress at once from one IP address. A connection
//! refused before HTTP (a TLS failure, a timeout, one too many from an address) is counted by
//! reason in `/metrics` and recorded in the refused list, where a flood is summed up instead of
//! listed row by row.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;

use crate::store::{Millis, RefusedRow, WriteOp};
use crate::Central;

/// How often the refusals held back are summed up in the refused list.
pub const DIGEST_WINDOW: Duration = Duration::from_secs(60);
/// Addresses listed one by one in a window; refusals from further ones are summed up in one row.
const LISTED_PER_WINDOW: usize = 50;
/// Distinct addresses counted in that one row (past this, only the refusals are counted).
const COUNTED_ADDRESSES: usize = 10_000;

/// Why a connection was closed before it sent an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyRefusal {
    /// No TLS handshake and complete request head within the handshake timeout.
    Timeout,
    /// The address has as many handshakes in progress as it may.
    TooMany,
    /// The TLS handshake failed.
    Tls(String),
}

impl EarlyRefusal {
    /// The `reason` label in `/metrics`.
    pub fn kind(&self) -> &'static str {
        match self {
            EarlyRefusal::Timeout => "handshake_timeout",
            EarlyRefusal::TooMany => "too_many_handshakes",
            EarlyRefusal::Tls(_) => "tls",
        }
    }
}

/// The handshakes in progress, per remote address, and what of their refusals is listed.
pub struct Handshakes {
    timeout: Duration,
    per_address: usize,
    in_progress: Mutex<HashMap<IpAddr, usize>>,
    gauge: Gauge,
    digest: Mutex<RefusalDigest>,
}

/// A handshake in progress; it ends (and frees its place) when dropped.
pub struct HandshakeSlot {
    handshakes: Arc<Handshakes>,
    ip: IpAddr,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut in_progress = self.handshakes.in_progress.lock().expect("handshakes lock");
        if let Some(n) = in_progress.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                in_progress.remove(&self.ip);
            }
        }
        self.handshakes.gauge.dec();
    }
}

impl Handshakes {
    /// `gauge` follows the number of handshakes in progress.
    pub fn new(timeout: Duration, per_address: usize, gauge: Gauge) -> Arc<Handshakes> {
        Arc::new(Handshakes {
            timeout,
            per_address,
            in_progress: Mutex::new(HashMap::new()),
            gauge,
            digest: Mutex::new(RefusalDigest::default()),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A place for a new connection's handshake; `None` when its address has no more.
    pub fn begin(self: &Arc<Self>, remote: SocketAddr) -> Option<HandshakeSlot> {
        let ip = remote.ip();
        let mut in_progress = self.in_progress.lock().expect("handshakes lock");
        let n = in_progress.entry(ip).or_insert(0);
        if *n >= self.per_address {
            return None;
        }
        *n += 1;
        self.gauge.inc();
        Some(HandshakeSlot {
            handshakes: self.clone(),
            ip,
        })
    }

    fn describe(&self, refusal: &EarlyRefusal) -> String {
        match refusal {
            EarlyRefusal::Timeout => format!(
                "no TLS handshake and complete HTTP request within the handshake timeout ({} s)",
                self.timeout.as_secs_f64()
            ),
            EarlyRefusal::TooMany => format!(
                "{} handshakes from this address in progress already (the most allowed)",
                self.per_address
            ),
            EarlyRefusal::Tls(e) => format!("TLS handshake failed: {e}"),
        }
    }

    /// Counts a connection refused before HTTP, and records it unless a refusal of the same
    /// kind from its address is listed in this window already (then it is summed up later).
    pub async fn refused(&self, central: &Central, remote: SocketAddr, refusal: EarlyRefusal) {
        let kind = refusal.kind();
        central
            .metrics()
            .refused_handshakes
            .get_or_create(&crate::metrics::ReasonLabels {
                reason: kind.into(),
            })
            .inc();
        let reason = self.describe(&refusal);
        let listed = self
            .digest
            .lock()
            .expect("digest lock")
            .note(remote.ip(), kind, &reason);
        if !listed {
            tracing::debug!(%remote, "{reason}");
            return;
        }
        tracing::warn!(%remote, "{reason}");
        record(central, remote.to_string(), reason).await;
    }

    /// Records the refusals held back in the window that ends, one row per address and kind,
    /// and starts a new window.
    pub async fn end_window(&self, central: &Central) {
        let rows = self
            .digest
            .lock()
            .expect("digest lock")
            .end_window(DIGEST_WINDOW);
        for (remote, reason) in rows {
            record(central, remote, reason).await;
        }
    }
}

/// Sums up the held-back refusals every [`DIGEST_WINDOW`].
pub fn spawn_digest(central: Arc<Central>, handshakes: Arc<Handshakes>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(DIGEST_WINDOW);
        every.tick().await;
        loop {
            every.tick().await;
            handshakes.end_window(&central).await;
        }
    });
}

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

async fn record(central: &Central, remote: String, reason: String) {
    let row = RefusedRow {
        time: now_ms(),
        remote,
        identity: None,
        reason,
        http_status: 0,
    };
    if let Err(e) = central.writer().write(WriteOp::Refused(row)).await {
        tracing::error!("a refused handshake was not recorded: {e}");
    }
    central.changed("handshake".into());
}

/// Which refusals before HTTP are listed: in each window, the first of each kind from each
/// address (up to [`LISTED_PER_WINDOW`] addresses); the rest are counted, and summed up when
/// the window ends.
#[derive(Default)]
struct RefusalDigest {
    /// Per address and kind listed in this window: the reason, and how many more came.
    listed: HashMap<(IpAddr, &'static str), (String, u64)>,
    listed_addresses: HashSet<IpAddr>,
    /// Refusals from addresses past the listed ones.
    unlisted: u64,
    unlisted_addresses: HashSet<IpAddr>,
}

impl RefusalDigest {
    /// Whether this refusal is to be listed now.
    fn note(&mut self, ip: IpAddr, kind: &'static str, reason: &str) -> bool {
        if let Some((_, more)) = self.listed.get_mut(&(ip, kind)) {
            *more += 1;
            return false;
        }
        if self.listed_addresses.len() < LISTED_PER_WINDOW || self.listed_addresses.contains(&ip) {
            self.listed_addresses.insert(ip);
            self.listed.insert((ip, kind), (reason.to_owned(), 0));
            return true;
        }
        self.unlisted += 1;
        if self.unlisted_addresses.len() < COUNTED_ADDRESSES {
            self.unlisted_addresses.insert(ip);
        }
        false
    }

    /// The rows that sum up what was held back (remote, reason), and a fresh window.
    fn end_window(&mut self, window: Duration) -> Vec<(String, String)> {
        let secs = window.as_secs();
        let mut rows: Vec<(String, String)> = self
            .listed
            .drain()
            .filter(|(_, (_, more))| *more > 0)
            .map(|((ip, _), (reason, more))| {
                (
                    ip.to_string(),
                    format!("{more} more in the last {secs} s: {reason}"),
                )
            })
            .collect();
        rows.sort();
        if self.unlisted > 0 {
            let addresses = self.unlisted_addresses.len();
            let at_least = if addresses >= COUNTED_ADDRESSES {
                "at least "
            } else {
                ""
            };
            rows.push((
                format!("{at_least}{addresses} addresses"),
                format!(
                    "{} connections refused before HTTP in the last {secs} s, from more \
                     addresses than are listed one by one ({LISTED_PER_WINDOW})",
                    self.unlisted
                ),
            ));
        }
        *self = RefusalDigest::default();
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_flood_from_one_address_is_listed_once_then_summed_up() {
        let mut digest = RefusalDigest::default();
        assert!(digest.note(ip(1), "handshake_timeout", "too slow"));
        for _ in 0..999 {
            assert!(!digest.note(ip(1), "handshake_timeout", "too slow"));
        }
        // Another kind from the same address is listed on its own.
        assert!(digest.note(ip(1), "tls", "bad TLS"));
        let rows = digest.end_window(Duration::from_secs(60));
        assert_eq!(
            rows,
            vec![(
                "10.0.0.1".to_owned(),
                "999 more in the last 60 s: too slow".to_owned()
            )]
        );
        // A new window lists the address again, and has nothing to sum up yet.
        assert!(digest.note(ip(1), "handshake_timeout", "too slow"));
        assert!(digest.end_window(Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn past_the_listed_addresses_refusals_are_counted_in_one_row() {
        let mut digest = RefusalDigest::default();
        let listed = (0..200u8)
            .filter(|n| digest.note(ip(*n), "handshake_timeout", "too slow"))
            .count();
        assert_eq!(listed, LISTED_PER_WINDOW);
        // An address listed already gets its other kinds listed still.
        assert!(digest.note(ip(0), "too_many_handshakes", "too many"));
        let rows = digest.end_window(Duration::from_secs(60));
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, "150 addresses");
        assert!(rows[0].1.starts_with("150 connections refused"), "{rows:?}");
    }
}
