//! The async shell around the core: the websocket, the state file, the hardware, the clocks
//! and the local control channel. It carries out the core's outputs in order (a `Persist` is
//! on disk before anything after it is sent) and feeds it connections, frames, hardware
//! changes and ticks.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use transport::client::ClientConfig;
pub use transport::tls::TlsVersion;
use transport::TransportError;

use crate::config::{Factory, KEYS};
use crate::hardware::{Hardware, Pilot};
use crate::store::{PileStore, StateStore, StoreError};
use crate::telemetry::Telemetry;
use crate::{ChargePoint, Identity, Options, Target};

/// How long a failed restart (Reset) waits before it is tried again.
pub const RESET_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Everything a pile process needs.
pub struct PileSettings {
    pub state_dir: PathBuf,
    /// Where a downloaded firmware image is kept; `None`: it is streamed through and checked
    /// (its length) without being kept, as a fleet's piles do.
    pub firmware_file: Option<PathBuf>,
    pub factory: Factory,
    pub identity: Identity,
    pub options: Options,
    /// TLS for `wss://` (the CA to trust and the TLS versions of the model), under security
    /// profiles 0 and 1. Under 2 and 3 the core names the trust anchors (the installed
    /// CentralSystemRootCertificates) and, under 3, the client certificate; the host then builds
    /// the configuration from those, with `tls_versions`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The TLS versions of the model.
    pub tls_versions: Vec<TlsVersion>,
    /// Fixed addresses for host names (see [`ClientConfig::resolve`]).
    pub resolve: Vec<(String, u16, std::net::SocketAddr)>,
    /// A write to the central system that takes longer fails the connection (the pile then
    /// reconnects); meanwhile the pile goes on.
    pub write_timeout: Duration,
    /// The bytes of log the pile keeps for GetDiagnostics ([`crate::logbook::DEFAULT_BUDGET`]
    /// for one pile; a fleet keeps less per pile).
    pub log_budget: usize,
    /// The local address to connect from (`None`: the system's choice).
    pub bind: Option<std::net::IpAddr>,
    /// Counters shared with the piles beside this one (a fleet's summary).
    pub telemetry: Option<Arc<Telemetry>>,
}

/// The default write timeout.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

mod control;
mod host;
mod mirror;
pub use control::{
    control_channel, ConnectionState, ConnectorState, Control, FirmwareState, PileHandle,
    PileState, TransactionState,
};
use host::Host;

fn snapshot(cp: &ChargePoint, settings: &PileSettings, connected: bool, online: bool) -> PileState {
    let config = cp.config();
    let network = cp.network();
    PileState {
        serial_number: settings.factory.serial_number.clone(),
        identity: config.identity().to_owned(),
        connection: ConnectionState {
            url: cp.target().url.clone(),
            connected,
            accepted: cp.is_accepted(),
            online,
        },
        connectors: (1..=cp.connector_count())
            .map(|id| ConnectorState {
                id,
                status: cp.status(id).to_string(),
                plugged: cp.is_plugged(id),
                pilot: cp.pilot(id).unwrap_or(Pilot::A),
                offered_a: cp.offered(id),
                relay_closed: cp.relay_closed(id),
                energy_wh: cp.meter_register(id),
                transaction: cp.transaction(id).map(|t| TransactionState {
                    id_tag: t.id_tag.clone(),
                    transaction_id: cp.transaction_id(id),
                    meter_start: t.meter_start,
                    started: t.started.to_string(),
                }),
            })
            .collect(),
        faults: cp.faults().iter().map(|f| f.name()).collect(),
        outbox: cp.outbox_len(),
        network: network.clone(),
        // A write-only key (AuthorizationKey) is shown nowhere.
        configuration: KEYS
            .iter()
            .filter(|k| k.access != crate::config::Access::WriteOnly)
            .map(|k| (k.name, cp.config_value(k.name)))
            .collect(),
        firmware: FirmwareState {
            version: cp.firmware_version().to_owned(),
            status: cp.firmware_status().to_string(),
            percent: cp.firmware_percent(),
        },
    }
}

/// Runs the pile, its state in `settings.state_dir`, until `shutdown` completes or its state
/// cannot be saved.
pub async fn run(
    settings: PileSettings,
    hardware: Box<dyn Hardware>,
    control: Control,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShellError> {
    let store = StateStore::open(&settings.state_dir)?;
    run_with_store(settings, Box::new(store), hardware, control, shutdown).await
}

/// Runs the pile with its state in `store`.
pub async fn run_with_store(
    settings: PileSettings,
    store: Box<dyn PileStore>,
    hardware: Box<dyn Hardware>,
    control: Control,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShellError> {
    Host::start(settings, store, hardware, control)?
        .run(shutdown)
        .await
}

/// The websocket client's configuration for a target: its TLS from the target's trust anchors
/// and client certificate when it names them (security profiles 2 and 3), else `tls`.
fn client_config(
    target: &Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    versions: &[TlsVersion],
) -> Result<ClientConfig, TransportError> {
    let mut config = ClientConfig::new(target.url.clone());
    config.basic = target.basic.clone().map(|(u, p)| (u, p.into_bytes()));
    config.tls = match &target.trust_anchors {
        Some(anchors) => {
            let identity = target
                .client_identity
                .as_ref()
                .map(|c| (c.chain_pem.as_bytes(), c.key_pem.as_bytes()));
            Some(transport::tls::client_config(
                anchors.as_bytes(),
                versions,
                identity,
            )?)
        }
        None => tls,
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::control::Command;
    use super::*;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_handle_learns_that_its_pile_stopped_instead_of_waiting() {
        let (handle, control) = control_channel();
        let other = handle.clone();
        // A command sent while the pile runs waits for it; when the pile stops, it is dropped.
        let waiting = tokio::spawn(async move { other.state().await });
        tokio::task::yield_now().await;
        drop(control);
        assert_eq!(waiting.await.unwrap(), None);
        assert_eq!(handle.state().await, None, "sent after the stop");
        assert_eq!(handle.provision("HeartbeatInterval", "60").await, None);
    }

    #[tokio::test]
    async fn the_pile_sees_its_commands_in_order_and_the_end_of_its_handles() {
        let (handle, control) = control_channel();
        let (a, _ra) = oneshot::channel();
        let (b, _rb) = oneshot::channel();
        handle.send(Command::State { reply: a });
        handle.send(Command::State { reply: b });
        let copy = handle.clone();
        drop(handle);
        assert!(matches!(control.recv().await, Some(Command::State { .. })));
        assert!(matches!(control.recv().await, Some(Command::State { .. })));
        drop(copy);
        assert!(control.recv().await.is_none(), "every handle gone");
    }
}
