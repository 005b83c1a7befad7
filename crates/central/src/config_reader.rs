//! Reads a pile's configuration after every accepted boot: GetConfiguration without keys, then
//! the vendor keys by name (FAQ 3.1: they are never returned otherwise), in as many calls as
//! GetConfigurationMaxKeys allows.

use std::sync::Arc;

use ocpp::{Action, CiString50, GetConfigurationRequest, Response};
use oem::keys::{GET_CONFIGURATION_MAX_KEYS, VENDOR_KEYS};

use crate::sessions::{Delivery, DeliveryError};
use crate::store::WriteOp;
use crate::Central;

/// Without a GetConfigurationMaxKeys, keys are asked for this many at a time.
const DEFAULT_MAX_KEYS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    #[error("the pile answered GetConfiguration with something else")]
    WrongAnswer,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// How many piles' configurations a node reads at once: after a boot storm the reads (two
/// GetConfiguration and a hundred rows stored per pile) wait their turn instead of crowding out
/// the boots' own writes.
const READS_AT_ONCE: usize = 32;

/// The configuration reads of a node, a few at a time.
pub struct ConfigReads {
    permits: tokio::sync::Semaphore,
}

impl Default for ConfigReads {
    fn default() -> Self {
        ConfigReads {
            permits: tokio::sync::Semaphore::new(READS_AT_ONCE),
        }
    }
}

/// Reads a pile's configuration once a read is free (after a boot: see [`READS_AT_ONCE`]).
pub fn spawn_read(central: Arc<Central>, pile: String) {
    tokio::spawn(async move {
        let Ok(_turn) = central.config_reads().permits.acquire().await else {
            return;
        };
        match read_all(&central, &pile).await {
            Ok(n) => tracing::info!(pile, keys = n, "configuration read"),
            Err(e) => tracing::warn!(pile, "configuration not read: {e}"),
        }
    });
}

async fn get(
    central: &Central,
    pile: &str,
    keys: Option<Vec<String>>,
) -> Result<Vec<(String, Option<String>, bool)>, ReadError> {
    let request = GetConfigurationRequest {
        key: keys.map(|k| k.iter().map(|k| CiString50::truncating(k)).collect()),
    };
    let answer = crate::cluster::delivery(central)
        .call(pile, Action::GetConfiguration, ocpp::encode(&request))
        .await?;
    let Response::GetConfiguration(r) = answer.value else {
        return Err(ReadError::WrongAnswer);
    };
    Ok(r.configuration_key
        .unwrap_or_default()
        .into_iter()
        .map(|kv| {
            (
                kv.key.as_str().to_owned(),
                kv.value.map(|v| v.as_str().to_owned()),
                kv.readonly,
            )
        })
        .collect())
}

/// Reads every key (standard, then vendor) and stores them; how many were found.
pub async fn read_all(central: &Central, pile: &str) -> Result<usize, ReadError> {
    let mut keys = get(central, pile, None).await?;
    let max_keys = keys
        .iter()
        .find(|(k, _, _)| k.eq_ignore_ascii_case(GET_CONFIGURATION_MAX_KEYS))
        .and_then(|(_, v, _)| v.as_deref()?.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_KEYS);
    for chunk in VENDOR_KEYS.chunks(max_keys) {
        let names = chunk.iter().map(|k| (*k).to_owned()).collect();
        for found in get(central, pile, Some(names)).await? {
            if !keys.iter().any(|(k, _, _)| k == &found.0) {
                keys.push(found);
            }
        }
    }
    let n = keys.len();
    store(central, pile, keys).await?;
    Ok(n)
}

async fn store(
    central: &Central,
    pile: &str,
    keys: Vec<(String, Option<String>, bool)>,
) -> Result<(), ReadError> {
    central
        .writer()
        .write(WriteOp::Configuration {
            pile: pile.to_owned(),
            keys,
        })
        .await?;
    Ok(())
}

/// Reads the named keys again (after a change) and stores them.
pub async fn read_keys(central: &Central, pile: &str, names: Vec<String>) -> Result<(), ReadError> {
    let keys = get(central, pile, Some(names)).await?;
    store(central, pile, keys).await
}
