//! `/api/piles`: registration, approval, state, configuration and the vendor view.

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
use serde_json::{json, Value};

use super::{json_body, time, time_opt, ApiError, ApiResult};
use crate::sessions::Delivery;
use crate::store::{ConnectorRow, PileRow, WriteOp, WriteResult};
use crate::vendor_view::{self, VendorPatch};
use crate::{secrets, Central};

#[derive(Serialize)]
pub struct ConnectorView {
    pub id: i64,
    pub status: String,
    pub error_code: String,
    pub vendor_error_code: Option<String>,
    /// The FAQ 3.6 names of the faults the vendorErrorCode reports.
    pub faults: Vec<String>,
    pub info: Option<String>,
    pub since: String,
}

/// FAQ 3.9: why a pile's ICCID and IMSI are (not) known, and how to reveal them.
#[derive(Serialize)]
pub struct Cellular {
    pub iccid: Option<String>,
    pub imsi: Option<String>,
    pub note: Option<String>,
    pub reveal: Option<Value>,
}

#[derive(Serialize)]
pub struct PileView {
    pub id: String,
    pub connected: bool,
    pub registration: String,
    pub has_password: bool,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
    pub firmware_status: Option<String>,
    pub diagnostics_status: Option<String>,
    pub last_boot: Option<String>,
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
        reveal: Some(json!({
            "method": "POST",
            "path": format!("/api/piles/{}/commands/TriggerMessage", p.id),
            "body": {"requestedMessage": "BootNotification", "connectorId": 0},
        })),
    }
}

pub fn pile_view(central: &Central, p: PileRow, connectors: &[ConnectorRow]) -> PileView {
    PileView {
        connected: central.sessions.is_connected(&p.id),
        registration: p.registration.clone(),
        has_password: p.password_hash.is_some(),
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
        .repo
        .pile(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no pile {id:?}")))
}

async fn view_of(central: &Central, id: &str) -> ApiResult<PileView> {
    let p = find(central, id).await?;
    let connectors = central.repo.connectors(Some(id)).await?;
    Ok(pile_view(central, p, &connectors))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Register {
    id: String,
    password: Option<String>,
}

pub async fn register(
    State(central): State<Arc<Central>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<PileView>)> {
    let r: Register = json_body(&body)?;
    transport::identity::validate(&r.id).map_err(|e| ApiError::bad_request(format!("id: {e}")))?;
    if let Some(pw) = &r.password {
        // OCPP 1.6 security whitepaper: 16 to 40 characters; we take 8 to 64, printable.
        if pw.len() < 8 || pw.len() > 64 || pw.chars().any(|c| c.is_control()) {
            return Err(ApiError::bad_request(
                "password: 8 to 64 characters, no control characters",
            ));
        }
    }
    if let Some(existing) = central.repo.pile(&r.id).await? {
        if existing.registration == "Accepted" {
            return Err(ApiError::conflict(format!(
                "pile {:?} is registered already",
                r.id
            )));
        }
    }
    let password_hash = match r.password {
        Some(pw) => Some(
            tokio::task::spawn_blocking(move || secrets::hash_password(pw.as_bytes()))
                .await
                .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        ),
        None => None,
    };
    central
        .writer
        .write(WriteOp::RegisterPile {
            id: r.id.clone(),
            password_hash,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view_of(&central, &r.id).await?)))
}

pub async fn show(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<PileView>> {
    Ok(Json(view_of(&central, &id).await?))
}

pub async fn delete(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    match central
        .writer
        .write(WriteOp::DeletePile { id: id.clone() })
        .await?
    {
        WriteResult::Affected(0) => Err(ApiError::not_found(format!("no pile {id:?}"))),
        _ => {
            central.sessions.close(&id);
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

async fn set_registration(central: &Central, id: &str, registration: &str) -> ApiResult<()> {
    find(central, id).await?;
    central
        .writer
        .write(WriteOp::SetRegistration {
            id: id.to_owned(),
            registration: registration.into(),
        })
        .await?;
    Ok(())
}

/// Approves a pile of the inbox; a connected one is asked for a new BootNotification at once.
pub async fn approve(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    set_registration(&central, &id, "Accepted").await?;
    let trigger = if central.sessions.is_connected(&id) {
        let request = TriggerMessageRequest {
            requested_message: MessageTrigger::BootNotification,
            connector_id: None,
        };
        match central
            .sessions
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
    let view = serde_json::to_value(view_of(&central, &id).await?).expect("a view serializes");
    let mut body = view;
    body["boot_notification_triggered"] = json!(trigger);
    Ok(Json(body))
}

pub async fn reject(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<PileView>> {
    set_registration(&central, &id, "Rejected").await?;
    Ok(Json(view_of(&central, &id).await?))
}

pub async fn configuration(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    find(&central, &id).await?;
    let rows = central.repo.configuration(&id).await?;
    let read_at = rows.iter().map(|r| r.read_at).max();
    let keys: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "value": vendor_view::shown_value(&r.key, r.value.as_deref()),
                "readonly": r.readonly,
            })
        })
        .collect();
    Ok(Json(json!({ "read_at": time_opt(read_at), "keys": keys })))
}

pub async fn configuration_history(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    find(&central, &id).await?;
    let rows = central.repo.configuration_history(&id).await?;
    Ok(Json(
        rows.iter()
            .map(|c| {
                json!({
                    "key": c.key,
                    "time": time(c.time),
                    "old_value": vendor_view::shown_value(&c.key, c.old_value.as_deref()),
                    "new_value": vendor_view::shown_value(&c.key, c.new_value.as_deref()),
                })
            })
            .collect(),
    ))
}

fn require_connected(central: &Central, id: &str) -> ApiResult<()> {
    if central.sessions.is_connected(id) {
        Ok(())
    } else {
        Err(ApiError::conflict(format!("pile {id:?} is not connected")))
    }
}

/// Reads the whole configuration again now.
pub async fn read_configuration(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    find(&central, &id).await?;
    require_connected(&central, &id)?;
    let n = crate::config_reader::read_all(&central, &id)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e.to_string()))?;
    Ok(Json(json!({ "keys": n })))
}

pub async fn vendor(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    find(&central, &id).await?;
    let rows = central.repo.configuration(&id).await?;
    let read_at = rows.iter().map(|r| r.read_at).max();
    let mut v = serde_json::to_value(vendor_view::view(&rows)).expect("a view serializes");
    v["read_at"] = json!(time_opt(read_at));
    Ok(Json(v))
}

pub async fn patch_vendor(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let patch: VendorPatch = json_body(&body)?;
    find(&central, &id).await?;
    let current = central.repo.configuration(&id).await?;
    let changes = vendor_view::changes(&patch, &current).map_err(ApiError::bad_request)?;
    require_connected(&central, &id)?;
    let mut results = serde_json::Map::new();
    let mut accepted = Vec::new();
    for (key, value) in changes.0 {
        let request = ChangeConfigurationRequest {
            key: CiString50::truncating(key),
            value: CiString500::truncating(&value),
        };
        let status = match central
            .sessions
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
        results.insert(key.to_owned(), Value::String(status));
    }
    // The values as the pile now reports them (a pile that moved away is read at its next boot).
    if !accepted.is_empty() && central.sessions.is_connected(&id) {
        if let Err(e) = crate::config_reader::read_keys(&central, &id, accepted).await {
            tracing::info!(pile = id, "changed keys not read back: {e}");
        }
    }
    Ok(Json(json!({ "results": results })))
}
