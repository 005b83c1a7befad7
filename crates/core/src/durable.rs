//! What the pile keeps across restarts. The shell writes it atomically before it sends
//! anything that follows an [`Output::Persist`](crate::Output::Persist).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ocpp::{
    IdTagInfo, MeterValuesRequest, StartTransactionRequest, StopTransactionRequest, Timestamp,
    TransactionData,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Durable {
    /// The writable configuration keys.
    pub config: BTreeMap<String, String>,
    /// Connectors (0 = the whole pile) set Inoperative by ChangeAvailability.
    pub inoperative: BTreeSet<u32>,
    /// Connectors whose change to Unavailable waits until their transaction ends or they leave
    /// Preparing (OCPP does not allow Preparing → Unavailable); the ChangeAvailability was
    /// answered `Scheduled`.
    #[serde(default)]
    pub scheduled: BTreeSet<u32>,
    /// The VendorWebsocketSettings and identity of the last connection whose boot was accepted.
    pub last_good: Option<(String, String)>,
    /// Counts starts, to keep message ids unique across restarts.
    pub boots: u64,
    /// The transaction running on each connector.
    #[serde(default)]
    pub transactions: BTreeMap<u32, Transaction>,
    /// Transaction messages not yet answered by the central system, oldest first (kept in
    /// the store's journal, not in the state file).
    #[serde(skip)]
    pub outbox: VecDeque<Queued>,
    /// The central's transactionId for each of our transactions whose StartTransaction was
    /// answered, while messages of that transaction remain in the outbox.
    #[serde(default)]
    pub transaction_ids: BTreeMap<u64, i32>,
    /// The last number given to a transaction or a queued message.
    #[serde(default)]
    pub last_number: u64,
    /// The authorization cache: what the central last said of each idTag.
    #[serde(default)]
    pub auth_cache: BTreeMap<String, IdTagInfo>,
    /// The Local Authorization List (idTags in lower case) and its version.
    #[serde(default)]
    pub local_list: BTreeMap<String, IdTagInfo>,
    #[serde(default)]
    pub local_list_version: i32,
    /// The charging profiles installed.
    #[serde(default)]
    pub profiles: Vec<crate::smart_charging::Installed>,
    /// The firmware upgrade under way.
    #[serde(default)]
    pub firmware: Option<FirmwareUpdate>,
    /// The firmware version installed by an upgrade (the build's own until then).
    #[serde(default)]
    pub firmware_version: Option<String>,
    /// The version of the image downloaded and not yet installed (`None`: no valid image).
    #[serde(default)]
    pub firmware_pending_version: Option<String>,
    /// The reservations, by reservationId.
    #[serde(default)]
    pub reservations: BTreeMap<i32, Reservation>,
    /// Each connector's meter register (Wh) when last recorded.
    #[serde(default)]
    pub registers: BTreeMap<u32, i64>,
}

/// A transaction in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Our number for it (the central's transactionId comes with the answer to StartTransaction).
    pub local_id: u64,
    pub connector: u32,
    pub id_tag: String,
    #[serde(default)]
    pub parent_id_tag: Option<String>,
    pub meter_start: i64,
    pub started: Timestamp,
    /// The register when the central said the idTag is not valid, while
    /// StopTransactionOnInvalidId is off: from there at most MaxEnergyOnInvalidId is delivered.
    #[serde(default)]
    pub invalidated_at_wh: Option<i64>,
    /// The register at the last sample.
    pub last_register: i64,
    /// The time of the last sample.
    #[serde(default)]
    pub last_sampled: Option<Timestamp>,
    /// Samples of StopTxnSampledData and StopTxnAlignedData, for StopTransaction.
    #[serde(default)]
    pub stop_data: Vec<TransactionData>,
}

/// A transaction message waiting for its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// The message id it is sent under, every time.
    pub message_id: String,
    /// The transaction it belongs to ([`Transaction::local_id`]).
    pub transaction: u64,
    pub message: TransactionMessage,
    /// Attempts the central answered with an error.
    #[serde(default)]
    pub failures: u32,
}

/// A transaction message; the transactionId of MeterValues and StopTransaction is filled in
/// when it is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TransactionMessage {
    Start(StartTransactionRequest),
    MeterValues(MeterValuesRequest),
    Stop(StopTransactionRequest),
}

/// A connector (0: any) held for an idTag until `expiry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub connector: u32,
    pub expiry: Timestamp,
    pub id_tag: String,
    #[serde(default)]
    pub parent_id_tag: Option<String>,
}

/// A firmware upgrade ordered by UpdateFirmware.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirmwareUpdate {
    pub location: String,
    pub retrieve_at: Timestamp,
    /// Download attempts still allowed (1 + retries at first).
    pub attempts_left: u32,
    /// Seconds between attempts.
    pub retry_interval: u64,
    pub stage: FirmwareStage,
    /// Whether the central answered every FirmwareStatusNotification of this upgrade in time.
    pub all_answered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirmwareStage {
    /// Until retrieveDate, or between attempts.
    Waiting,
    Downloading,
    Downloaded,
    Installing,
    Installed,
}
