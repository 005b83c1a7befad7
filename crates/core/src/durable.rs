//! What the pile keeps across restarts. The shell writes it atomically before it sends
//! anything that follows an [`Output::Persist`](crate::Output::Persist).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ocpp::{
    IdTagInfo, MeterValuesRequest, StartTransactionRequest, StopTransactionRequest, Timestamp,
    TransactionData,
};
use serde::{Deserialize, Serialize};

use crate::certificates;
use crate::client_certificate;
use crate::smart_charging::Installed;

/// The security log keeps this many of the latest security events.
pub const SECURITY_LOG_LEN: usize = 100;
/// At most this many security events wait for the central system; beyond, the oldest goes
/// (the security log still has it).
pub const SECURITY_QUEUE_LEN: usize = 50;

/// The durable state. Its fields are private: each part changes through what its owner does
/// with it (the configuration, the starts and the server, availability, transactions, the
/// outbox, authorization, charging profiles, firmware, reservations). The field names are
/// the state file's: they stay as they are, so that a state written before still loads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Durable {
    /// The writable configuration keys.
    config: BTreeMap<String, String>,
    /// Connectors (0 = the whole pile) set Inoperative by ChangeAvailability.
    inoperative: BTreeSet<u32>,
    /// Connectors whose change to Unavailable waits until their transaction ends or they leave
    /// Preparing (OCPP does not allow Preparing → Unavailable); the ChangeAvailability was
    /// answered `Scheduled`.
    #[serde(default)]
    scheduled: BTreeSet<u32>,
    /// The VendorWebsocketSettings and identity of the last connection whose boot was accepted.
    last_good: Option<(String, String)>,
    /// Counts starts, to keep message ids unique across restarts.
    boots: u64,
    /// The transaction running on each connector.
    #[serde(default)]
    transactions: BTreeMap<u32, Transaction>,
    /// Transaction messages not yet answered by the central system, oldest first (kept in
    /// the store's journal, not in the state file).
    #[serde(skip)]
    outbox: VecDeque<Queued>,
    /// The central's transactionId for each of our transactions whose StartTransaction was
    /// answered, while messages of that transaction remain in the outbox.
    #[serde(default)]
    transaction_ids: BTreeMap<u64, i32>,
    /// The last number given to a transaction or a queued message.
    #[serde(default)]
    last_number: u64,
    /// The authorization cache: what the central last said of each idTag.
    #[serde(default)]
    auth_cache: BTreeMap<String, IdTagInfo>,
    /// The Local Authorization List (idTags in lower case) and its version.
    #[serde(default)]
    local_list: BTreeMap<String, IdTagInfo>,
    #[serde(default)]
    local_list_version: i32,
    /// The charging profiles installed.
    #[serde(default)]
    profiles: Vec<Installed>,
    /// The firmware upgrade under way.
    #[serde(default)]
    firmware: Option<FirmwareUpdate>,
    /// The firmware version installed by an upgrade (the build's own until then).
    #[serde(default)]
    firmware_version: Option<String>,
    /// The version of the image downloaded and not yet installed (`None`: no valid image).
    #[serde(default)]
    firmware_pending_version: Option<String>,
    /// The reservations, by reservationId.
    #[serde(default)]
    reservations: BTreeMap<i32, Reservation>,
    /// Each connector's meter register (Wh) when last recorded.
    #[serde(default)]
    registers: BTreeMap<u32, i64>,
    /// The root certificates installed (CentralSystem and Manufacturer stores).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    certificates: Vec<certificates::Installed>,
    /// SecurityEventNotifications not yet answered by the central system, oldest first.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    security_events: VecDeque<QueuedEvent>,
    /// The security log: the latest security events, oldest first.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    security_log: VecDeque<SecurityEvent>,
    /// The key pair of the last SignCertificate, waiting for its CertificateSigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_key: Option<client_certificate::PendingKey>,
    /// The pile's client certificate (security profile 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_certificate: Option<client_certificate::ClientCertificate>,
    /// The SecurityProfile of the last connection whose boot was accepted (`None`: none yet
    /// since this field exists; the profile then counts as good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    good_profile: Option<i64>,
}

impl Durable {
    // The configuration.

    /// The writable configuration keys as last made durable.
    pub fn config(&self) -> &BTreeMap<String, String> {
        &self.config
    }

    /// Records the writable configuration keys (a [`crate::config::Configuration`] snapshot).
    pub fn record_config(&mut self, snapshot: BTreeMap<String, String>) {
        self.config = snapshot;
    }

    // Starts and the server.

    /// How many times the pile started.
    pub fn boots(&self) -> u64 {
        self.boots
    }

    /// One more start; its number.
    pub fn count_boot(&mut self) -> u64 {
        self.boots += 1;
        self.boots
    }

    /// The VendorWebsocketSettings and identity of the last connection whose boot was accepted.
    pub fn last_good_settings(&self) -> Option<&(String, String)> {
        self.last_good.as_ref()
    }

    /// A boot was accepted with these settings and identity; whether that is news.
    pub fn remember_good_settings(&mut self, settings: String, identity: String) -> bool {
        let good = Some((settings, identity));
        if self.last_good == good {
            return false;
        }
        self.last_good = good;
        true
    }

    // Availability.

    /// The connectors (0: the whole pile) set Inoperative.
    pub fn inoperative(&self) -> &BTreeSet<u32> {
        &self.inoperative
    }

    /// Whether a connector is set Inoperative, by itself or with the whole pile.
    pub fn is_inoperative(&self, connector: u32) -> bool {
        self.inoperative.contains(&connector) || self.inoperative.contains(&0)
    }

    /// Sets a connector (0: the whole pile) Inoperative.
    pub fn make_inoperative(&mut self, connector: u32) {
        self.inoperative.insert(connector);
    }

    /// Sets a connector (0: the whole pile, and every connector with it) Operative again. The
    /// scheduled changes to Unavailable of `targets` are cancelled unless the whole pile stays
    /// Inoperative.
    pub fn make_operative(&mut self, connector: u32, targets: &[u32]) {
        self.inoperative.remove(&connector);
        if connector == 0 {
            self.inoperative.clear();
        }
        if !self.inoperative.contains(&0) {
            for c in targets {
                self.scheduled.remove(c);
            }
        }
    }

    /// The connectors whose change to Unavailable waits.
    pub fn scheduled(&self) -> &BTreeSet<u32> {
        &self.scheduled
    }

    /// These connectors become Unavailable once their transaction ends or they leave Preparing.
    pub fn schedule_unavailable(&mut self, connectors: impl IntoIterator<Item = u32>) {
        self.scheduled.extend(connectors);
    }

    /// The scheduled change of a connector took effect.
    pub fn release_scheduled(&mut self, connector: u32) {
        self.scheduled.remove(&connector);
    }

    // Transactions.

    /// The transactions running, by connector.
    pub fn transactions(&self) -> &BTreeMap<u32, Transaction> {
        &self.transactions
    }

    pub fn transaction(&self, connector: u32) -> Option<&Transaction> {
        self.transactions.get(&connector)
    }

    /// The running transaction of that number ([`Transaction::local_id`]).
    pub fn transaction_numbered(&self, local_id: u64) -> Option<&Transaction> {
        self.transactions.values().find(|t| t.local_id == local_id)
    }

    /// The next number for a transaction or a queued message.
    pub fn next_number(&mut self) -> u64 {
        self.last_number += 1;
        self.last_number
    }

    /// A transaction starts on its connector, the register at its start recorded.
    pub fn begin_transaction(&mut self, transaction: Transaction) {
        self.registers
            .insert(transaction.connector, transaction.meter_start);
        self.transactions.insert(transaction.connector, transaction);
    }

    /// The transaction of a connector ends (it is what the caller gets back).
    pub fn end_transaction(&mut self, connector: u32) -> Option<Transaction> {
        self.transactions.remove(&connector)
    }

    /// A sample of a connector's transaction: the register then, and what StopTransaction
    /// will carry of it.
    pub fn record_sample(
        &mut self,
        connector: u32,
        register: i64,
        at: Timestamp,
        stop_data: Option<TransactionData>,
    ) {
        if let Some(tx) = self.transactions.get_mut(&connector) {
            tx.last_register = register;
            tx.last_sampled = Some(at);
            tx.stop_data.extend(stop_data);
        }
        self.registers.insert(connector, register);
    }

    /// What StopTransaction will carry of a sample that is not the transaction's own
    /// (a clock-aligned one).
    pub fn add_stop_data(&mut self, connector: u32, stop_data: Option<TransactionData>) {
        if let Some(tx) = self.transactions.get_mut(&connector) {
            tx.stop_data.extend(stop_data);
        }
    }

    /// The central said the idTag of a connector's transaction is not valid, at this register
    /// (the first time counts).
    pub fn invalidate_transaction(&mut self, connector: u32, register: i64) {
        if let Some(tx) = self.transactions.get_mut(&connector) {
            tx.invalidated_at_wh.get_or_insert(register);
        }
    }

    /// The central's transactionId of one of our transactions, once its start was answered.
    pub fn transaction_id(&self, local_id: u64) -> Option<i32> {
        self.transaction_ids.get(&local_id).copied()
    }

    pub fn record_transaction_id(&mut self, local_id: u64, transaction_id: i32) {
        self.transaction_ids.insert(local_id, transaction_id);
    }

    /// The stop of a transaction was answered: its transactionId is no longer needed.
    pub fn forget_transaction_id(&mut self, local_id: u64) {
        self.transaction_ids.remove(&local_id);
    }

    /// Each connector's meter register (Wh) when last recorded.
    pub fn registers(&self) -> &BTreeMap<u32, i64> {
        &self.registers
    }

    pub fn recorded_register(&self, connector: u32) -> Option<i64> {
        self.registers.get(&connector).copied()
    }

    pub fn record_register(&mut self, connector: u32, register: i64) {
        self.registers.insert(connector, register);
    }

    // The outbox.

    /// The transaction messages waiting for the central system, oldest first.
    pub fn outbox(&self) -> &VecDeque<Queued> {
        &self.outbox
    }

    /// A transaction message joins the outbox, under a message id of its own
    /// (`tx-<boot>-<number>`) that it keeps on every attempt.
    pub fn queue(&mut self, transaction: u64, message: TransactionMessage) {
        let n = self.next_number();
        self.outbox.push_back(Queued {
            message_id: format!("tx-{}-{n}", self.boots),
            transaction,
            message,
            failures: 0,
        });
    }

    /// The oldest message leaves the outbox (answered, or given up).
    pub fn dequeue(&mut self) -> Option<Queued> {
        self.outbox.pop_front()
    }

    /// The central could not process the oldest message: one more failure. The message, with
    /// its failures so far.
    pub fn count_failure(&mut self) -> Option<&Queued> {
        let front = self.outbox.front_mut()?;
        front.failures += 1;
        Some(front)
    }

    /// The outbox as a store read it back (the state file does not hold it).
    pub fn restore_outbox(&mut self, outbox: VecDeque<Queued>) {
        self.outbox = outbox;
    }

    // Authorization.

    /// The authorization cache: what the central last said of each idTag (in lower case).
    pub fn auth_cache(&self) -> &BTreeMap<String, IdTagInfo> {
        &self.auth_cache
    }

    /// What the cache holds of an idTag (any case).
    pub fn cached_verdict(&self, id_tag: &str) -> Option<&IdTagInfo> {
        self.auth_cache.get(&id_tag.to_ascii_lowercase())
    }

    /// Keeps the central's verdict on an idTag; whether the cache changed.
    pub fn cache_verdict(&mut self, id_tag: &str, info: IdTagInfo) -> bool {
        let key = id_tag.to_ascii_lowercase();
        if self.auth_cache.get(&key) == Some(&info) {
            return false;
        }
        self.auth_cache.insert(key, info);
        true
    }

    /// Empties the cache; whether it held anything.
    pub fn clear_auth_cache(&mut self) -> bool {
        let had = !self.auth_cache.is_empty();
        self.auth_cache.clear();
        had
    }

    /// The Local Authorization List (idTags in lower case).
    pub fn local_list(&self) -> &BTreeMap<String, IdTagInfo> {
        &self.local_list
    }

    /// The list's version as GetLocalListVersion reports it: 0 while the list is empty.
    pub fn local_list_version(&self) -> i32 {
        if self.local_list.is_empty() {
            0
        } else {
            self.local_list_version
        }
    }

    /// What the list says of an idTag (any case).
    pub fn listed(&self, id_tag: &str) -> Option<&IdTagInfo> {
        self.local_list.get(&id_tag.to_ascii_lowercase())
    }

    /// A new list (idTags in lower case) and its version.
    pub fn replace_local_list(&mut self, list: BTreeMap<String, IdTagInfo>, version: i32) {
        self.local_list = list;
        self.local_list_version = version;
    }

    // Charging profiles.

    pub fn profiles(&self) -> &[Installed] {
        &self.profiles
    }

    /// The profiles installed from now on.
    pub fn replace_profiles(&mut self, profiles: Vec<Installed>) {
        self.profiles = profiles;
    }

    /// Removes the profiles `matches` picks; how many went.
    pub fn remove_profiles(&mut self, mut matches: impl FnMut(&Installed) -> bool) -> usize {
        let before = self.profiles.len();
        self.profiles.retain(|i| !matches(i));
        before - self.profiles.len()
    }

    // Firmware.

    /// The firmware upgrade under way.
    pub fn firmware_update(&self) -> Option<&FirmwareUpdate> {
        self.firmware.as_ref()
    }

    /// The upgrade under way, to move it on (its stage, its attempts, its answers).
    pub fn firmware_update_mut(&mut self) -> Option<&mut FirmwareUpdate> {
        self.firmware.as_mut()
    }

    /// An upgrade begins (replacing any under way).
    pub fn begin_firmware_update(&mut self, update: FirmwareUpdate) {
        self.firmware = Some(update);
    }

    /// The upgrade ends, installed or not.
    pub fn end_firmware_update(&mut self) -> Option<FirmwareUpdate> {
        self.firmware.take()
    }

    /// The firmware version an upgrade installed (`None`: the build's own).
    pub fn installed_firmware(&self) -> Option<&str> {
        self.firmware_version.as_deref()
    }

    pub fn record_installed_firmware(&mut self, version: String) {
        self.firmware_version = Some(version);
    }

    /// The image downloaded carries this version (`None`: no valid image).
    pub fn keep_downloaded_image(&mut self, version: Option<String>) {
        self.firmware_pending_version = version;
    }

    /// The version of the image downloaded, taken to be installed.
    pub fn take_downloaded_image(&mut self) -> Option<String> {
        self.firmware_pending_version.take()
    }

    // Reservations.

    /// The reservations, by reservationId.
    pub fn reservations(&self) -> &BTreeMap<i32, Reservation> {
        &self.reservations
    }

    /// Holds a connector under a reservationId (replacing a reservation of that id).
    pub fn reserve(&mut self, reservation_id: i32, reservation: Reservation) {
        self.reservations.insert(reservation_id, reservation);
    }

    /// The reservation of that id ends (it is what the caller gets back).
    pub fn end_reservation(&mut self, reservation_id: i32) -> Option<Reservation> {
        self.reservations.remove(&reservation_id)
    }
}

impl Durable {
    // Certificates.

    /// The root certificates installed, in the order they were.
    pub fn certificates(&self) -> &[certificates::Installed] {
        &self.certificates
    }

    /// Installs a certificate; whether it is new (the same one twice is kept once).
    pub fn install_certificate(&mut self, certificate: certificates::Installed) -> bool {
        if self.certificates.contains(&certificate) {
            return false;
        }
        self.certificates.push(certificate);
        true
    }

    /// The key pair waiting for its certificate.
    pub fn pending_key(&self) -> Option<&client_certificate::PendingKey> {
        self.pending_key.as_ref()
    }

    /// A new key pair for a SignCertificate (the one before, if any, is forgotten).
    pub fn set_pending_key(&mut self, key: client_certificate::PendingKey) {
        self.pending_key = Some(key);
    }

    /// The pile's client certificate, if it has one.
    pub fn client_certificate(&self) -> Option<&client_certificate::ClientCertificate> {
        self.client_certificate.as_ref()
    }

    /// A checked CertificateSigned chain becomes the client certificate; its key is no longer
    /// pending.
    pub fn install_client_certificate(&mut self, cert: client_certificate::ClientCertificate) {
        self.pending_key = None;
        self.client_certificate = Some(cert);
    }

    /// The SecurityProfile of the last accepted boot.
    pub fn good_profile(&self) -> Option<i64> {
        self.good_profile
    }

    /// A boot was accepted under this profile; whether that is news.
    pub fn remember_good_profile(&mut self, profile: i64) -> bool {
        let news = self.good_profile != Some(profile);
        self.good_profile = Some(profile);
        news
    }

    /// Removes the certificate at this place in [`Durable::certificates`].
    pub fn remove_certificate(&mut self, index: usize) -> Option<certificates::Installed> {
        (index < self.certificates.len()).then(|| self.certificates.remove(index))
    }

    // Security events.

    /// A security event joins the log and, when `notify`, the queue of SecurityEventNotifications
    /// (under a message id of its own, `sec-<boot>-<number>`, kept on every attempt). The
    /// event that left a full queue, if any.
    pub fn record_security_event(
        &mut self,
        event: SecurityEvent,
        notify: bool,
    ) -> Option<QueuedEvent> {
        if self.security_log.len() >= SECURITY_LOG_LEN {
            self.security_log.pop_front();
        }
        self.security_log.push_back(event.clone());
        if !notify {
            return None;
        }
        let dropped = (self.security_events.len() >= SECURITY_QUEUE_LEN)
            .then(|| self.security_events.pop_front())
            .flatten();
        let n = self.next_number();
        self.security_events.push_back(QueuedEvent {
            message_id: format!("sec-{}-{n}", self.boots),
            event,
            failures: 0,
        });
        dropped
    }

    /// The security log, oldest first.
    pub fn security_log(&self) -> &VecDeque<SecurityEvent> {
        &self.security_log
    }

    /// The SecurityEventNotifications waiting for the central system, oldest first.
    pub fn security_events(&self) -> &VecDeque<QueuedEvent> {
        &self.security_events
    }

    /// The oldest notification leaves the queue (answered, or given up).
    pub fn dequeue_security_event(&mut self) -> Option<QueuedEvent> {
        self.security_events.pop_front()
    }

    /// The central could not process the oldest notification: one more failure; the
    /// failures so far.
    pub fn count_security_failure(&mut self) -> Option<u32> {
        let front = self.security_events.front_mut()?;
        front.failures += 1;
        Some(front.failures)
    }
}

/// A security event (security whitepaper, appendix 1), as the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// The whitepaper's name of the event (`StartupOfTheDevice`, ...).
    pub kind: String,
    pub timestamp: Timestamp,
    #[serde(default)]
    pub tech_info: Option<String>,
}

/// A SecurityEventNotification waiting for its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// The message id it is sent under, every time.
    pub message_id: String,
    pub event: SecurityEvent,
    /// Attempts the central answered with an error.
    #[serde(default)]
    pub failures: u32,
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
    /// A SignedUpdateFirmware: what checks its image (`None`: a plain UpdateFirmware, written
    /// as before: no field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedFirmware>,
}

/// What a SignedUpdateFirmware brings to check its image with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedFirmware {
    pub request_id: i32,
    /// The signing certificate (checked against the ManufacturerRootCertificates), DER.
    #[serde(with = "crate::certificates::der_base64")]
    pub certificate: Vec<u8>,
    /// The signature over the image.
    #[serde(with = "crate::certificates::der_base64")]
    pub signature: Vec<u8>,
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
