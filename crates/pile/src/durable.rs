//! What the pile keeps across restarts. The shell writes it atomically before it sends
//! anything that follows an [`Output::Persist`](crate::Output::Persist).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durable {
    /// The writable configuration keys.
    pub config: BTreeMap<String, String>,
    /// Connectors (0 = the whole pile) set Inoperative by ChangeAvailability.
    pub inoperative: BTreeSet<u32>,
    /// Connectors whose change to Unavailable waits until they leave Preparing (OCPP does not
    /// allow Preparing → Unavailable); the ChangeAvailability was answered `Scheduled`.
    #[serde(default)]
    pub scheduled: BTreeSet<u32>,
    /// The VendorWebsocketSettings and identity of the last connection whose boot was accepted.
    pub last_good: Option<(String, String)>,
    /// Counts starts, to keep message ids unique across restarts.
    pub boots: u64,
}
