//! What the central system recorded: transactions and their meter values, idTags, refused
//! handshakes, the raw message log, deviations, events.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ocpp::AuthorizationStatus;
use serde::Deserialize;
use serde_json::{json, Value};

use super::piles::find;
use super::{json_body, time, time_opt, ApiError, ApiResult};
use crate::store::{IdTagRow, TransactionRow, WriteOp, WriteResult};
use crate::Central;

fn limit(l: Option<i64>) -> i64 {
    l.unwrap_or(100).clamp(1, 10_000)
}

#[derive(Deserialize)]
pub struct MessageQuery {
    action: Option<String>,
    limit: Option<i64>,
}

pub async fn messages(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    find(&central, &id).await?;
    let action = q.action.filter(|a| !a.is_empty());
    let rows = central
        .repo
        .messages(&id, action.as_deref(), limit(q.limit))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|m| {
                json!({
                    "time": time(m.time),
                    "direction": m.direction,
                    "action": m.action,
                    "message_id": m.message_id,
                    "frame": m.frame,
                })
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

pub async fn deviations(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<Value>>> {
    find(&central, &id).await?;
    let rows = central.repo.deviations(&id, limit(q.limit)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| json!({"time": time(d.time), "action": d.action, "kind": d.kind, "detail": d.detail}))
            .collect(),
    ))
}

pub async fn events(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<Value>>> {
    find(&central, &id).await?;
    let rows = central.repo.events(&id, limit(q.limit)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| json!({"time": time(e.time), "kind": e.kind, "detail": e.detail}))
            .collect(),
    ))
}

pub async fn status_history(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<Value>>> {
    find(&central, &id).await?;
    let rows = central.repo.status_history(&id, limit(q.limit)).await?;
    Ok(Json(
        rows.iter()
            .map(|c| {
                let v = super::piles::connector_view(c);
                json!({"time": time(c.time), "connector": v.id, "status": v.status,
                       "error_code": v.error_code, "vendor_error_code": v.vendor_error_code,
                       "faults": v.faults, "info": v.info})
            })
            .collect(),
    ))
}

fn transaction_view(t: &TransactionRow) -> Value {
    let energy = match (t.meter_start, t.meter_stop) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    // Running: the last register reading minus the meter start; stopped: `energy_wh`.
    json!({
        "id": t.id,
        "pile": t.pile,
        "connector": t.connector,
        "id_tag": t.id_tag,
        "start": time_opt(t.start),
        "stop": time_opt(t.stop),
        "meter_start": t.meter_start,
        "meter_stop": t.meter_stop,
        "energy_wh": energy,
        "energy_so_far_wh": t.energy_wh(),
        "reason": t.reason,
        "stop_id_tag": t.stop_id_tag,
        "reservation_id": t.reservation_id,
        "reconciled": t.reconciled,
    })
}

#[derive(Deserialize)]
pub struct TransactionQuery {
    pile: Option<String>,
    active: Option<String>,
}

pub async fn transactions(
    State(central): State<Arc<Central>>,
    Query(q): Query<TransactionQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let active = match q.active.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "active: {other:?} is not true or false"
            )))
        }
    };
    let rows = central
        .repo
        .transactions(q.pile.as_deref().filter(|p| !p.is_empty()), active)
        .await?;
    Ok(Json(rows.iter().map(transaction_view).collect()))
}

fn transaction_id(id: &str) -> ApiResult<i64> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a transaction id")))
}

pub async fn transaction(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id = transaction_id(&id)?;
    let t = central
        .repo
        .transaction(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no transaction {id}")))?;
    Ok(Json(transaction_view(&t)))
}

pub async fn meter_values(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let id = transaction_id(&id)?;
    central
        .repo
        .transaction(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no transaction {id}")))?;
    let rows = central.repo.meter_values(id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|m| {
                json!({
                    "time": time(m.time),
                    "connector": m.connector,
                    "sampled_value": serde_json::from_str::<Value>(&m.sampled).unwrap_or(Value::Null),
                })
            })
            .collect(),
    ))
}

fn id_tag_view(t: &IdTagRow) -> Value {
    json!({
        "id_tag": t.id_tag,
        "status": t.status,
        "expiry_date": time_opt(t.expiry_date),
        "parent_id_tag": t.parent_id_tag,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdTagBody {
    id_tag: Option<String>,
    status: String,
    expiry_date: Option<String>,
    parent_id_tag: Option<String>,
}

fn id_tag_row(tag: String, b: IdTagBody) -> ApiResult<IdTagRow> {
    let check = |what: &str, v: &str| {
        if v.is_empty() || v.chars().count() > 20 {
            Err(ApiError::bad_request(format!(
                "{what}: 1 to 20 characters (CiString20)"
            )))
        } else {
            Ok(())
        }
    };
    check("id_tag", &tag)?;
    if let Some(p) = &b.parent_id_tag {
        check("parent_id_tag", p)?;
    }
    let status = AuthorizationStatus::from_wire(&b.status)
        .filter(|s| *s != AuthorizationStatus::ConcurrentTx)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "status: {:?} is not Accepted, Blocked, Expired or Invalid",
                b.status
            ))
        })?;
    let expiry_date = match b.expiry_date.as_deref() {
        None => None,
        // Any RFC 3339 form, kept as UTC milliseconds (what goes to a pile is OCPP-J's form).
        Some(s) => Some(
            ocpp::Timestamp::from_rfc3339(s)
                .map_err(|e| ApiError::bad_request(format!("expiry_date: {e}")))?
                .millis(),
        ),
    };
    Ok(IdTagRow {
        id_tag: tag,
        status: status.as_str().to_owned(),
        expiry_date,
        parent_id_tag: b.parent_id_tag,
    })
}

pub async fn id_tags(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(
        central
            .repo
            .id_tags()
            .await?
            .iter()
            .map(id_tag_view)
            .collect(),
    ))
}

pub async fn id_tag(
    State(central): State<Arc<Central>>,
    Path(tag): Path<String>,
) -> ApiResult<Json<Value>> {
    let t = central
        .repo
        .id_tag(&tag)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no idTag {tag:?}")))?;
    Ok(Json(id_tag_view(&t)))
}

pub async fn post_id_tag(
    State(central): State<Arc<Central>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let mut b: IdTagBody = json_body(&body)?;
    let tag = b
        .id_tag
        .take()
        .ok_or_else(|| ApiError::bad_request("id_tag is required"))?;
    if central.repo.id_tag(&tag).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "idTag {tag:?} exists; PUT changes it"
        )));
    }
    let row = id_tag_row(tag, b)?;
    central.writer.write(WriteOp::PutIdTag(row.clone())).await?;
    Ok((StatusCode::CREATED, Json(id_tag_view(&row))))
}

pub async fn put_id_tag(
    State(central): State<Arc<Central>>,
    Path(tag): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: IdTagBody = json_body(&body)?;
    if b.id_tag.as_ref().is_some_and(|t| *t != tag) {
        return Err(ApiError::bad_request(
            "id_tag in the body differs from the path",
        ));
    }
    let row = id_tag_row(tag, b)?;
    central.writer.write(WriteOp::PutIdTag(row.clone())).await?;
    Ok(Json(id_tag_view(&row)))
}

pub async fn delete_id_tag(
    State(central): State<Arc<Central>>,
    Path(tag): Path<String>,
) -> ApiResult<StatusCode> {
    match central
        .writer
        .write(WriteOp::DeleteIdTag {
            id_tag: tag.clone(),
        })
        .await?
    {
        WriteResult::Affected(0) => Err(ApiError::not_found(format!("no idTag {tag:?}"))),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

pub async fn refused(
    State(central): State<Arc<Central>>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<Value>>> {
    let rows = central.repo.refused(limit(q.limit)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                json!({
                    "time": time(r.time),
                    "remote": r.remote,
                    "identity": r.identity,
                    "reason": r.reason,
                    "http_status": r.http_status,
                })
            })
            .collect(),
    ))
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}
