//! `/api/piles`: registration, approval, state, configuration and the vendor view.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use ocpp::{
    Action, ChangeConfigurationRequest, CiString50, CiString500, MessageTrigger, Response,
    TriggerMessageRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{json_body, time, time_opt, ApiError, ApiResult, ErrorBody};
use super::{pile_security, schema};
use crate::sessions::Delivery;
use crate::store::{ConnectorRow, PileRow, WriteOp, WriteResult};
use crate::vendor_view::{self, VendorPatch, VendorView};
use crate::Central;

/// A connector as its last StatusNotification left it.
#[derive(Serialize, ToSchema)]
#[schema(as = Connector)]
pub struct ConnectorView {
    /// The connectorId (0: the pile as a whole).
    pub id: i64,
    pub status: String,
    pub error_code: String,
    pub vendor_error_code: Option<String>,
    /// The FAQ 3.6 names of the faults the vendorErrorCode reports.
    pub faults: Vec<String>,
    pub info: Option<String>,
    /// The time of that StatusNotification.
    #[schema(format = DateTime)]
    pub since: String,
}

/// FAQ 3.9: why a pile's ICCID and IMSI are (not) known, and how to reveal them.
#[derive(Serialize, ToSchema)]
pub struct Cellular {
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    /// Why they are not known, when the pile booted without them.
    pub note: Option<String>,
    /// The request that makes the pile boot again and report them.
    pub reveal: Option<Reveal>,
}

/// An API request to make.
#[derive(Serialize, ToSchema)]
pub struct Reveal {
    pub method: &'static str,
    pub path: String,
    pub body: RevealBody,
}

/// The TriggerMessage payload that asks for a BootNotification.
#[derive(Serialize, ToSchema)]
pub struct RevealBody {
    #[serde(rename = "requestedMessage")]
    pub requested_message: &'static str,
    #[serde(rename = "connectorId")]
    pub connector_id: u32,
}

/// A pile: its admission, what its BootNotification told, its connectors.
#[derive(Serialize, ToSchema)]
#[schema(as = Pile)]
pub struct PileView {
    /// Its identity (the last segment of its websocket URL).
    pub id: String,
    /// It has a websocket connection now.
    pub connected: bool,
    /// The node of the central system holding that connection (null while it is offline).
    pub node: Option<String>,
    #[schema(schema_with = schema::registration)]
    pub registration: String,
    /// It has a Basic password (the one it connects with under Security Profiles 1 and 2).
    pub has_password: bool,
    /// After a rotation it accepted, its former password stays valid until it connects
    /// with the new one.
    pub previous_password_valid: bool,
    /// The Security Profile set for it: 0 nothing required, 1 Basic, 2 TLS and Basic, 3 TLS
    /// and a client certificate whose subject CN is its identity.
    #[schema(minimum = 0, maximum = 3)]
    pub security_profile: i64,
    /// The highest Security Profile it has connected with: no handshake below it is admitted
    /// until an operator lowers it (`PATCH` with `allow_downgrade`).
    #[schema(minimum = 0, maximum = 3)]
    pub connected_profile: i64,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub firmware_status: Option<String>,
    pub diagnostics_status: Option<String>,
    #[schema(format = DateTime)]
    pub last_boot: Option<String>,
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    pub connectors: Vec<ConnectorView>,
    pub cellular: Cellular,
}

pub fn connector_view(c: &ConnectorRow) -> ConnectorView {
    ConnectorView {
        id: c.connector,
        status: c.status.clone(),
        error_code: c.error_code.clone(),
        vendor_error_code: c.vendor_error_code.clone(),
        faults: c
            .vendor_error_code
            .as_deref()
            .map(oem::error_codes::decode)
            .unwrap_or_default(),
        info: c.info.clone(),
        since: time(c.time),
    }
}

fn cellular(p: &PileRow) -> Cellular {
    let known = p.iccid.as_deref().is_some_and(|s| !s.is_empty())
        || p.imsi.as_deref().is_some_and(|s| !s.is_empty());
    if known || p.last_boot.is_none() {
        return Cellular {
            iccid: p.iccid.clone(),
            imsi: p.imsi.clone(),
            note: None,
            reveal: None,
        };
    }
    Cellular {
        iccid: None,
        imsi: None,
        note: Some(
            "the last BootNotification had no ICCID/IMSI: the pile reports them only while it \
             reaches the server over 4G alone, with ETH and WiFi disconnected (FAQ 3.9)"
                .into(),
        ),
        reveal: Some(Reveal {
            method: "POST",
            path: format!("/api/piles/{}/commands/TriggerMessage", p.id),
            body: RevealBody {
                requested_message: "BootNotification",
                connector_id: 0,
            },
        }),
    }
}

pub fn pile_view(central: &Central, p: PileRow, connectors: &[ConnectorRow]) -> PileView {
    // Alone, this node's connections; in a cluster, the presence record every node writes.
    let (connected, node) = match central.cluster() {
        None => {
            let here = central.sessions().is_live(&p.id);
            (here, here.then(|| central.node().to_owned()))
        }
        Some(_) => (p.connection.is_some(), p.node.clone()),
    };
    PileView {
        connected,
        node,
        registration: p.registration.clone(),
        has_password: p.password_hash.is_some(),
        previous_password_valid: p.previous_password_hash.is_some(),
        security_profile: p.security_profile,
        connected_profile: p.connected_profile,
        vendor: p.vendor.clone(),
        model: p.model.clone(),
        serial_number: p.serial_number.clone(),
        firmware_version: p.firmware_version.clone(),
        firmware_status: p.firmware_status.clone(),
        diagnostics_status: p.diagnostics_status.clone(),
        last_boot: time_opt(p.last_boot),
        last_seen: time_opt(p.last_seen),
        connectors: connectors
            .iter()
            .filter(|c| c.pile == p.id)
            .map(connector_view)
            .collect(),
        cellular: cellular(&p),
        id: p.id,
    }
}

pub async fn find(central: &Central, id: &str) -> ApiResult<PileRow> {
    central
        .repo()
        .pile(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no pile {id:?}")))
}

pub(super) async fn view_of(central: &Central, id: &str) -> ApiResult<PileView> {
    let p = find(central, id).await?;
    let connectors = central.repo().connectors(Some(id)).await?;
    Ok(pile_view(central, p, &connectors))
}

/// A pile to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Register {
    /// Its identity: no `/` and no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^/\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    id: String,
    /// The HTTP Basic password it connects with (Security Profiles 1 and 2), no control
    /// characters; stored as an Argon2id hash, never shown.
    #[schema(
        min_length = 8,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    password: Option<String>,
    /// Its Security Profile (0-3); default 1 with a password, else 0. 1 and 2 need a
    /// password, 2 and 3 a central on TLS.
    #[schema(minimum = 0, maximum = 3)]
    security_profile: Option<i64>,
}

/// Register a pile (Accepted), optionally with a Basic password and a Security Profile
///
/// Registering a pile of the approval inbox again sets its password and profile; the profile it
/// connected with is kept.
#[utoipa::path(post, path = "/api/piles", operation_id = "register_pile", tag = "piles",
    request_body = Register,
    responses(
        (status = 201, description = "registered", body = PileView),
        (status = 400, description = "the body does not fit; the reason is in `error`", body = ErrorBody),
        (status = 409, description = "registered already", body = ErrorBody)))]
pub async fn register(
    State(central): State<Arc<Central>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PileView>)> {
    let r: Register = json_body(&body)?;
    transport::identity::validate(&r.id).map_err(|e| ApiError::bad_request(format!("id: {e}")))?;
    if let Some(pw) = &r.password {
        pile_security::check_password(pw)?;
    }
    let security_profile = r
        .security_profile
        .unwrap_or(if r.password.is_some() { 1 } else { 0 });
    pile_security::check_profile(&central, security_profile, r.password.is_some())?;
    if let Some(existing) = central.repo().pile(&r.id).await? {
        if existing.registration == "Accepted" {
            return Err(ApiError::conflict(format!(
                "pile {:?} is registered already",
                r.id
            )));
        }
    }
    let password_hash = match r.password {
        Some(pw) => Some(pile_security::hash(pw).await?),
        None => None,
    };
    central
        .writer()
        .write(WriteOp::RegisterPile {
            id: r.id.clone(),
            password_hash,
            security_profile,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view_of(&central, &r.id).await?)))
}

/// One pile
#[utoipa::path(get, path = "/api/piles/{id}", operation_id = "show_pile", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "the pile", body = PileView),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn show(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<PileView>> {
    Ok(Json(view_of(&central, &id).await?))
}

/// Forget a pile and close its connection
#[utoipa::path(delete, path = "/api/piles/{id}", operation_id = "delete_pile", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn delete(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    match central
        .writer()
        .write(WriteOp::DeletePile { id: id.clone() })
        .await?
    {
        WriteResult::Affected(0) => Err(ApiError::not_found(format!("no pile {id:?}"))),
        _ => {
            central.sessions().close(&id);
            crate::cluster::owner::close_deleted(&central, &id).await;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

async fn set_registration(central: &Central, id: &str, registration: &str) -> ApiResult<()> {
    find(central, id).await?;
    central
        .writer()
        .write(WriteOp::SetRegistration {
            id: id.to_owned(),
            registration: registration.into(),
        })
        .await?;
    Ok(())
}

/// A pile just approved, and what came of asking it to boot again.
#[derive(Serialize, ToSchema)]
pub struct ApprovedPile {
    #[serde(flatten)]
    pile: PileView,
    /// The status of its answer to TriggerMessage BootNotification, or why there is none;
    /// null when it is not connected.
    boot_notification_triggered: Option<String>,
}

/// Approve a pile of the inbox; a connected one is sent TriggerMessage BootNotification
///
/// Its boots are answered Accepted from now on; a connected pile is asked for a new
/// BootNotification at once.
#[utoipa::path(post, path = "/api/piles/{id}/approve", operation_id = "approve_pile", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "the pile, with boot_notification_triggered", body = ApprovedPile),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn approve(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApprovedPile>> {
    set_registration(&central, &id, "Accepted").await?;
    let delivery = crate::cluster::delivery(&central);
    let trigger = if delivery.is_connected(&id).await {
        let request = TriggerMessageRequest {
            requested_message: MessageTrigger::BootNotification,
            connector_id: None,
        };
        match delivery
            .call(&id, Action::TriggerMessage, ocpp::encode(&request))
            .await
        {
            Ok(d) => match d.value {
                Response::TriggerMessage(r) => Some(r.status.as_str().to_owned()),
                _ => None,
            },
            Err(e) => Some(e.to_string()),
        }
    } else {
        None
    };
    Ok(Json(ApprovedPile {
        pile: view_of(&central, &id).await?,
        boot_notification_triggered: trigger,
    }))
}

/// Reject a pile: its boots are answered Rejected
#[utoipa::path(post, path = "/api/piles/{id}/reject", operation_id = "reject_pile", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "the pile", body = PileView),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn reject(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<PileView>> {
    set_registration(&central, &id, "Rejected").await?;
    Ok(Json(view_of(&central, &id).await?))
}

/// A pile's configuration as last read.
#[derive(Serialize, ToSchema)]
pub struct Configuration {
    /// When it was last read; null when never.
    #[schema(format = DateTime)]
    read_at: Option<String>,
    keys: Vec<ConfigurationKey>,
}

/// A configuration key; the websocket password shown as `***`.
#[derive(Serialize, ToSchema)]
pub struct ConfigurationKey {
    key: String,
    value: Option<String>,
    readonly: bool,
}

/// The configuration as last read
#[utoipa::path(get, path = "/api/piles/{id}/configuration", operation_id = "pile_configuration", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "the keys", body = Configuration),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn configuration(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Configuration>> {
    find(&central, &id).await?;
    let rows = central.repo().configuration(&id).await?;
    let read_at = rows.iter().map(|r| r.read_at).max();
    let keys = rows
        .iter()
        .map(|r| ConfigurationKey {
            key: r.key.clone(),
            value: vendor_view::shown_value(&r.key, r.value.as_deref()),
            readonly: r.readonly,
        })
        .collect();
    Ok(Json(Configuration {
        read_at: time_opt(read_at),
        keys,
    }))
}

/// A change of a configuration key, seen when the configuration was read.
#[derive(Serialize, ToSchema)]
pub struct ConfigurationChange {
    key: String,
    #[schema(format = DateTime)]
    time: String,
    /// Null when the key was new.
    old_value: Option<String>,
    /// Null when the key is gone.
    new_value: Option<String>,
}

/// Changes of the configuration, newest first
#[utoipa::path(get, path = "/api/piles/{id}/configuration/history", operation_id = "pile_configuration_history", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "the changes", body = Vec<ConfigurationChange>),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn configuration_history(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ConfigurationChange>>> {
    find(&central, &id).await?;
    let rows = central.repo().configuration_history(&id).await?;
    Ok(Json(
        rows.iter()
            .map(|c| ConfigurationChange {
                key: c.key.clone(),
                time: time(c.time),
                old_value: vendor_view::shown_value(&c.key, c.old_value.as_deref()),
                new_value: vendor_view::shown_value(&c.key, c.new_value.as_deref()),
            })
            .collect(),
    ))
}

pub(super) async fn require_connected(central: &Central, id: &str) -> ApiResult<()> {
    if crate::cluster::delivery(central).is_connected(id).await {
        Ok(())
    } else {
        Err(ApiError::conflict(format!("pile {id:?} is not connected")))
    }
}

/// How many keys a read of the configuration got.
#[derive(Serialize, ToSchema)]
pub struct KeysRead {
    keys: usize,
}

/// Read the whole configuration again now (vendor keys by name)
#[utoipa::path(post, path = "/api/piles/{id}/configuration/read", operation_id = "read_pile_configuration", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "how many keys were read", body = KeysRead),
        (status = 404, description = "no such pile", body = ErrorBody),
        (status = 409, description = "the pile is not connected", body = ErrorBody),
        (status = 502, description = "the pile did not answer, or answered with a CALLERROR", body = ErrorBody)))]
pub async fn read_configuration(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<KeysRead>> {
    find(&central, &id).await?;
    require_connected(&central, &id).await?;
    let n = crate::config_reader::read_all(&central, &id)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(Json(KeysRead { keys: n }))
}

/// The vendor keys decoded, as last read.
#[derive(Serialize, ToSchema)]
#[schema(as = Vendor)]
pub struct VendorAsRead {
    #[serde(flatten)]
    view: VendorView,
    /// When the configuration was last read; null when never.
    #[schema(format = DateTime)]
    read_at: Option<String>,
}

/// The vendor keys decoded (FAQ 3.1-3.16)
#[utoipa::path(get, path = "/api/piles/{id}/vendor", operation_id = "pile_vendor", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "the vendor view", body = VendorAsRead),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn vendor(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<VendorAsRead>> {
    find(&central, &id).await?;
    let rows = central.repo().configuration(&id).await?;
    let read_at = rows.iter().map(|r| r.read_at).max();
    Ok(Json(VendorAsRead {
        view: vendor_view::view(&rows),
        read_at: time_opt(read_at),
    }))
}

/// Each changed key's ChangeConfiguration status.
#[derive(Serialize, ToSchema)]
pub struct KeyResults {
    /// The key, and the status the pile answered (Accepted, RebootRequired, Rejected,
    /// NotSupported) or why it did not answer.
    results: BTreeMap<String, String>,
}

/// Change vendor fields: all validated first, one ChangeConfiguration per key
///
/// One bad field refuses them all and nothing is sent; the keys that move the connection go
/// last. Changed keys are read back from the pile.
#[utoipa::path(patch, path = "/api/piles/{id}/vendor", operation_id = "patch_pile_vendor", tag = "piles",
    params(schema::PileId),
    request_body = VendorPatch,
    responses(
        (status = 200, description = "each key's status", body = KeyResults),
        (status = 400, description = "the body does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody),
        (status = 409, description = "the pile is not connected", body = ErrorBody)))]
pub async fn patch_vendor(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<KeyResults>> {
    let patch: VendorPatch = json_body(&body)?;
    find(&central, &id).await?;
    let current = central.repo().configuration(&id).await?;
    let changes = vendor_view::changes(&patch, &current).map_err(ApiError::bad_request)?;
    require_connected(&central, &id).await?;
    let delivery = crate::cluster::delivery(&central);
    let mut results = BTreeMap::new();
    let mut accepted = Vec::new();
    for (key, value) in changes.0 {
        let request = ChangeConfigurationRequest {
            key: CiString50::truncating(key),
            value: CiString500::truncating(&value),
        };
        let status = match delivery
            .call(&id, Action::ChangeConfiguration, ocpp::encode(&request))
            .await
        {
            Ok(d) => match d.value {
                Response::ChangeConfiguration(r) => {
                    let s = r.status.as_str().to_owned();
                    if s == "Accepted" || s == "RebootRequired" {
                        accepted.push(key.to_owned());
                    }
                    s
                }
                _ => "the pile answered with another action".into(),
            },
            Err(e) => e.to_string(),
        };
        results.insert(key.to_owned(), status);
    }
    // The values as the pile now reports them (a pile that moved away is read at its next boot).
    if !accepted.is_empty() && delivery.is_connected(&id).await {
        if let Err(e) = crate::config_reader::read_keys(&central, &id, accepted).await {
            tracing::info!(pile = id, "changed keys not read back: {e}");
        }
    }
    Ok(Json(KeyResults { results }))
}
