//! What the store keeps, as rows, and the writes it takes. Each row type reads its columns by
//! name (`sqlx::FromRow`), the one mapping of SQLite's and PostgreSQL's rows.

use serde::Serialize;

use super::column::{Direction, Flag};
use super::samples::StoredSamples;

/// Milliseconds since the Unix epoch (UTC).
pub type Millis = i64;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PileRow {
    pub id: String,
    pub password_hash: Option<String>,
    /// `Accepted`, `Pending` or `Rejected`.
    pub registration: String,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub charge_box_serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub meter_type: Option<String>,
    pub meter_serial_number: Option<String>,
    pub firmware_status: Option<String>,
    pub diagnostics_status: Option<String>,
    pub created_at: Millis,
    pub last_boot: Option<Millis>,
    pub last_seen: Option<Millis>,
    /// The number of its live connection on `node` (none while it is offline).
    pub connection: Option<i64>,
    /// The node holding its connection (none while it is offline).
    pub node: Option<String>,
    /// Since when that connection lives.
    pub connected_at: Option<Millis>,
    /// The Security Profile an operator set (0-3).
    pub security_profile: i64,
    /// The highest Security Profile it has connected with (a weaker handshake is refused).
    pub connected_profile: i64,
    /// After a rotation it accepted: its former password, valid until it connects with the
    /// new one.
    pub previous_password_hash: Option<String>,
}

impl PileRow {
    /// The weakest handshake it may connect with: the profile set, or the one it connected
    /// with, whichever is higher.
    pub fn required_profile(&self) -> i64 {
        self.security_profile.max(self.connected_profile)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConnectorRow {
    pub pile: String,
    pub connector: i64,
    pub status: String,
    pub error_code: String,
    pub vendor_error_code: Option<String>,
    pub info: Option<String>,
    pub time: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TransactionRow {
    pub id: i64,
    pub pile: String,
    pub connector: Option<i64>,
    pub id_tag: Option<String>,
    #[sqlx(rename = "start_time")]
    pub start: Option<Millis>,
    pub meter_start: Option<i64>,
    pub reservation_id: Option<i64>,
    #[sqlx(rename = "stop_time")]
    pub stop: Option<Millis>,
    pub meter_stop: Option<i64>,
    pub stop_id_tag: Option<String>,
    pub reason: Option<String>,
    #[sqlx(try_from = "Flag")]
    pub reconciled: bool,
    /// The last Energy.Active.Import.Register reading (Wh) while it ran.
    pub meter_last: Option<i64>,
}

impl TransactionRow {
    /// Wh delivered: meter stop minus meter start once stopped; while it runs, its last
    /// register reading minus meter start (none before its first reading).
    pub fn energy_wh(&self) -> Option<i64> {
        let start = self.meter_start?;
        match self.stop {
            Some(_) => self.meter_stop.map(|m| m - start),
            None => self.meter_last.map(|m| m - start),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MeterValueRow {
    pub pile: String,
    pub connector: i64,
    pub transaction_id: Option<i64>,
    pub time: Millis,
    /// The sampledValue array, as JSON (stored packed: `samples.rs`).
    #[sqlx(try_from = "StoredSamples")]
    pub sampled: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct IdTagRow {
    pub id_tag: String,
    /// An OCPP AuthorizationStatus: `Accepted`, `Blocked`, `Expired`, `Invalid`.
    pub status: String,
    pub expiry_date: Option<Millis>,
    pub parent_id_tag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfigRow {
    pub key: String,
    pub value: Option<String>,
    #[sqlx(try_from = "Flag")]
    pub readonly: bool,
    pub read_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfigChange {
    pub key: String,
    pub time: Millis,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusedRow {
    pub time: Millis,
    pub remote: String,
    pub identity: Option<String>,
    pub reason: String,
    pub http_status: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LogRow {
    pub pile: String,
    pub time: Millis,
    /// Its place in the log, newest highest, as read (its block's id and its place in the
    /// block; a row of an older version's `message_log`, its number there); unused in a row
    /// to insert.
    pub seq: i64,
    /// `in` or `out`.
    #[sqlx(try_from = "Direction")]
    pub direction: &'static str,
    pub action: Option<String>,
    pub message_id: Option<String>,
    pub frame: String,
}

/// Message log and deviation rows written with a batch of writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogBatch<'a> {
    pub messages: &'a [LogRow],
    pub deviations: &'a [DeviationRow],
}

impl LogBatch<'_> {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.deviations.is_empty()
    }

    pub fn len(&self) -> usize {
        self.messages.len() + self.deviations.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviationRow {
    pub pile: String,
    pub time: Millis,
    pub action: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub pile: String,
    pub time: Millis,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CommandRow {
    pub id: i64,
    pub pile: String,
    pub action: String,
    pub payload: String,
    pub sent_at: Millis,
    pub answered_at: Option<Millis>,
    /// `response`, `call_error`, `timeout`, `not_connected`, `disconnected`, `bad_response` or
    /// `unavailable`.
    pub outcome: Option<String>,
    pub result: Option<String>,
}

/// A firmware image the central system serves.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ImageRow {
    /// Given by the store when it is inserted.
    pub id: i64,
    pub name: String,
    pub target: String,
    pub model: Option<String>,
    pub version: Option<String>,
    pub size: i64,
    pub sha256: String,
    pub created_at: Millis,
    /// The manufacturer's signature of the image (base64) and its signing certificate (PEM),
    /// when it was uploaded with them.
    pub signature: Option<String>,
    pub signing_certificate: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CampaignRow {
    pub id: i64,
    pub created_at: Millis,
    /// JSON, as the campaign module writes it.
    pub spec: String,
    /// `running`, `finished` or `cancelled`.
    pub state: String,
    pub finished_at: Option<Millis>,
}

/// One pile of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RolloutRow {
    pub campaign: i64,
    pub position: i64,
    pub pile: String,
    pub phase: String,
    pub outcome: Option<String>,
    /// The state machine, as JSON.
    pub state: String,
}

/// What a BootNotification says of the pile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootInfo {
    pub vendor: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub charge_box_serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub meter_type: Option<String>,
    pub meter_serial_number: Option<String>,
}

/// One MeterValue element: its time and its sampled values as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterSample {
    pub time: Millis,
    pub sampled: String,
}

/// A write, applied with others in one database transaction (group commit).
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Registers a pile through the API (or updates its password and Security Profile);
    /// Accepted. The profile it connected with is kept.
    RegisterPile {
        id: String,
        password_hash: Option<String>,
        security_profile: i64,
    },
    /// Sets a pile's Security Profile and/or password. Raising the profile always applies;
    /// lowering it below the profile set or the one the pile connected with only with
    /// `allow_downgrade`, which also forgets the one it connected with. A new password ends
    /// the former one kept after a rotation. Answers the rows changed (0: no such pile, or a
    /// lowering without `allow_downgrade`).
    SetSecurity {
        id: String,
        security_profile: Option<i64>,
        allow_downgrade: bool,
        password_hash: Option<String>,
    },
    /// A handshake passed at `profile`: the pile's highest profile is raised to it; with
    /// `current_password`, its password after a rotation has been used, so the former one
    /// ends.
    ConnectedAtProfile {
        id: String,
        profile: i64,
        current_password: bool,
    },
    /// A new password about to be sent to the pile (ChangeConfiguration AuthorizationKey): it
    /// becomes the password at once, so that the pile may connect with it as soon as it takes
    /// it; the one it replaces stays valid until the pile connects with the new one.
    PasswordRotated {
        id: String,
        password_hash: String,
    },
    /// The pile refused the new password: the one it replaced is the password again.
    PasswordRotationUndone {
        id: String,
    },
    /// A pile that connected without being registered (admission `approve` or `open`): kept
    /// with the given registration unless it is known already.
    AdmitPile {
        id: String,
        registration: String,
    },
    SetRegistration {
        id: String,
        registration: String,
    },
    DeletePile {
        id: String,
    },
    Boot {
        pile: String,
        info: BootInfo,
    },
    Seen {
        pile: String,
    },
    /// The pile's connection `connection` to the node `node` is live (its presence record).
    Connected {
        pile: String,
        node: String,
        connection: i64,
    },
    /// The pile's connection `connection` to `node` ended (a newer one of the same pile, on
    /// this node or another, stays).
    Disconnected {
        pile: String,
        node: String,
        connection: i64,
    },
    Status {
        pile: String,
        connector: i64,
        status: String,
        error_code: String,
        vendor_error_code: Option<String>,
        info: Option<String>,
        vendor_id: Option<String>,
        time: Millis,
    },
    StartTransaction {
        pile: String,
        connector: i64,
        id_tag: String,
        meter_start: i64,
        reservation_id: Option<i64>,
        time: Millis,
    },
    StopTransaction {
        pile: String,
        transaction_id: i64,
        id_tag: Option<String>,
        meter_stop: i64,
        time: Millis,
        reason: Option<String>,
        data: Vec<MeterSample>,
    },
    MeterValues {
        pile: String,
        connector: i64,
        transaction_id: Option<i64>,
        samples: Vec<MeterSample>,
    },
    /// FirmwareStatusNotification, DiagnosticsStatusNotification, DataTransfer, security
    /// events, connections replaced: kept as events; the two statuses also on the pile.
    Event {
        pile: String,
        kind: String,
        detail: String,
        firmware_status: Option<String>,
        diagnostics_status: Option<String>,
    },
    /// Keys read with GetConfiguration; changed values go to the history.
    Configuration {
        pile: String,
        keys: Vec<(String, Option<String>, bool)>,
    },
    PutIdTag(IdTagRow),
    DeleteIdTag {
        id_tag: String,
    },
    CommandSent {
        pile: String,
        action: String,
        payload: String,
    },
    CommandDone {
        id: i64,
        outcome: String,
        result: Option<String>,
    },
    Refused(RefusedRow),
    /// A campaign's state; answers the rows changed (0: its fence no longer holds).
    CampaignState {
        id: i64,
        state: String,
        finished_at: Option<Millis>,
        fence: Option<Fence>,
    },
    /// One pile's upgrade state, as it changed; answers the rows written (0: its fence no
    /// longer holds).
    PutRollout {
        row: RolloutRow,
        fence: Option<Fence>,
    },
    /// A cancel asked of a campaign another node runs: `cancelling` if it is `running` or
    /// `cancelling`; answers the rows changed (0: not running).
    CancelCampaign {
        id: i64,
    },
}

impl WriteOp {
    /// The pile this write shows alive (its `last_seen` becomes the batch's time): the
    /// messages a pile sends. A batch updates each such pile once, after its other writes.
    pub fn seen_pile(&self) -> Option<&str> {
        match self {
            WriteOp::Seen { pile }
            | WriteOp::Connected { pile, .. }
            | WriteOp::Status { pile, .. }
            | WriteOp::StartTransaction { pile, .. }
            | WriteOp::StopTransaction { pile, .. }
            | WriteOp::MeterValues { pile, .. } => Some(pile),
            _ => None,
        }
    }
}

/// The lease a write depends on: it is applied only while `holder` holds the lease `lease` (the
/// lease's row checked in the same statement, and kept from changing hands until the write's
/// transaction ends), so that a node that lost a lease without noticing (paused, then resumed)
/// writes nothing under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
}

/// What the creation of a campaign answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignCreated {
    /// Stored, with this id.
    Id(i64),
    /// Nothing stored: the pile is in the running campaign `campaign` already (one created at
    /// the same moment, through another node).
    Busy { pile: String, campaign: i64 },
}

/// What a write answers.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteResult {
    Done,
    /// Rows changed (registration, deletes).
    Affected(u64),
    /// A StartTransaction's transactionId and its idTag as found.
    Started {
        transaction_id: i64,
        id_tag: Option<IdTagRow>,
    },
    /// A StopTransaction's idTag as found (when it named one).
    Stopped {
        id_tag: Option<IdTagRow>,
    },
    /// The id of a command just recorded.
    Command(i64),
    /// The id of a row just inserted.
    Id(i64),
}

/// A 64-bit FNV-1a digest, the key of a meter value's content.
pub fn digest(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}
