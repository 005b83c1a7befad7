//! What the central system recorded: transactions and their meter values, idTags, refused
//! handshakes, the raw message log, deviations, events.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use ocpp::AuthorizationStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::piles::find;
use super::schema::{self, PileId};
use super::{json_body, time, time_opt, ApiError, ApiResult, ErrorBody};
use crate::store::{IdTagRow, TransactionRow, WriteOp, WriteResult};
use crate::Central;

fn limit(l: Option<i64>) -> i64 {
    l.unwrap_or(100).clamp(1, 10_000)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only the frames of this action (an answer carries the action of its CALL).
    action: Option<String>,
    /// At most this many (default 100; taken within 1 to 10000).
    limit: Option<i64>,
}

/// A frame of the raw message log.
#[derive(Serialize, ToSchema)]
#[schema(as = Message)]
pub struct MessageView {
    #[schema(format = DateTime)]
    time: String,
    #[schema(schema_with = schema::direction)]
    direction: &'static str,
    action: Option<String>,
    message_id: Option<String>,
    /// The frame as it went over the websocket.
    frame: String,
}

/// The raw message log, newest first
#[utoipa::path(get, path = "/api/piles/{id}/messages", operation_id = "pile_messages", tag = "records",
    params(PileId, MessageQuery),
    responses(
        (status = 200, description = "the frames", body = Vec<MessageView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn messages(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<MessageQuery>,
) -> ApiResult<Json<Vec<MessageView>>> {
    find(&central, &id).await?;
    let action = q.action.filter(|a| !a.is_empty());
    let rows = central
        .repo()
        .messages(&id, action.as_deref(), limit(q.limit))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|m| MessageView {
                time: time(m.time),
                direction: m.direction,
                action: m.action,
                message_id: m.message_id,
                frame: m.frame,
            })
            .collect(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    /// At most this many (default 100; taken within 1 to 10000).
    limit: Option<i64>,
}

impl Limit {
    /// How many rows to read.
    pub fn rows(&self) -> i64 {
        limit(self.limit)
    }
}

/// What lenient decoding tolerated in a message of the pile.
#[derive(Serialize, ToSchema)]
#[schema(as = Deviation)]
pub struct DeviationView {
    #[schema(format = DateTime)]
    time: String,
    action: String,
    kind: String,
    detail: String,
}

/// What lenient decoding tolerated
#[utoipa::path(get, path = "/api/piles/{id}/deviations", operation_id = "pile_deviations", tag = "records",
    params(PileId, Limit),
    responses(
        (status = 200, description = "the deviations, newest first", body = Vec<DeviationView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn deviations(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<DeviationView>>> {
    find(&central, &id).await?;
    let rows = central.repo().deviations(&id, q.rows()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| DeviationView {
                time: time(d.time),
                action: d.action,
                kind: d.kind,
                detail: d.detail,
            })
            .collect(),
    ))
}

/// Something that happened to a pile.
#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    #[schema(format = DateTime)]
    time: String,
    kind: String,
    detail: String,
}

/// Connections, replacements, firmware and diagnostics notifications, DataTransfer
#[utoipa::path(get, path = "/api/piles/{id}/events", operation_id = "pile_events", tag = "records",
    params(PileId, Limit),
    responses(
        (status = 200, description = "the events, newest first", body = Vec<EventView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn events(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<EventView>>> {
    find(&central, &id).await?;
    let rows = central.repo().events(&id, q.rows()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| EventView {
                time: time(e.time),
                kind: e.kind,
                detail: e.detail,
            })
            .collect(),
    ))
}

/// A StatusNotification of the pile.
#[derive(Serialize, ToSchema)]
#[schema(as = Status)]
pub struct StatusView {
    #[schema(format = DateTime)]
    time: String,
    connector: i64,
    status: String,
    error_code: String,
    vendor_error_code: Option<String>,
    /// The FAQ 3.6 names of the faults the vendorErrorCode reports.
    faults: Vec<String>,
    info: Option<String>,
}

/// Every StatusNotification, newest first
#[utoipa::path(get, path = "/api/piles/{id}/status-history", operation_id = "pile_status_history", tag = "records",
    params(PileId, Limit),
    responses(
        (status = 200, description = "the statuses", body = Vec<StatusView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn status_history(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<StatusView>>> {
    find(&central, &id).await?;
    let rows = central.repo().status_history(&id, q.rows()).await?;
    Ok(Json(
        rows.iter()
            .map(|c| {
                let v = super::piles::connector_view(c);
                StatusView {
                    time: time(c.time),
                    connector: v.id,
                    status: v.status,
                    error_code: v.error_code,
                    vendor_error_code: v.vendor_error_code,
                    faults: v.faults,
                    info: v.info,
                }
            })
            .collect(),
    ))
}

/// A transaction as the pile's StartTransaction and StopTransaction told it.
#[derive(Serialize, ToSchema)]
#[schema(as = Transaction)]
pub struct TransactionView {
    /// The OCPP transactionId.
    id: i64,
    pile: String,
    connector: Option<i64>,
    id_tag: Option<String>,
    #[schema(format = DateTime)]
    start: Option<String>,
    /// Null while it runs.
    #[schema(format = DateTime)]
    stop: Option<String>,
    /// Wh.
    meter_start: Option<i64>,
    meter_stop: Option<i64>,
    /// meter_stop - meter_start, once both are known.
    energy_wh: Option<i64>,
    /// While it runs: its last Energy.Active.Import.Register reading minus meter_start (null
    /// before the first); once stopped: energy_wh.
    energy_so_far_wh: Option<i64>,
    reason: Option<String>,
    stop_id_tag: Option<String>,
    reservation_id: Option<i64>,
    /// Known only from a StopTransaction for a transactionId the central never issued
    /// (`connector`, `start` and `meter_start` may be null).
    reconciled: bool,
}

fn transaction_view(t: &TransactionRow) -> TransactionView {
    let energy = match (t.meter_start, t.meter_stop) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    TransactionView {
        id: t.id,
        pile: t.pile.clone(),
        connector: t.connector,
        id_tag: t.id_tag.clone(),
        start: time_opt(t.start),
        stop: time_opt(t.stop),
        meter_start: t.meter_start,
        meter_stop: t.meter_stop,
        energy_wh: energy,
        energy_so_far_wh: t.energy_wh(),
        reason: t.reason.clone(),
        stop_id_tag: t.stop_id_tag.clone(),
        reservation_id: t.reservation_id,
        reconciled: t.reconciled,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionQuery {
    /// Only this pile's.
    pile: Option<String>,
    #[param(schema_with = schema::active_filter)]
    active: Option<String>,
}

/// Transactions, newest first
#[utoipa::path(get, path = "/api/transactions", operation_id = "list_transactions", tag = "records",
    params(TransactionQuery),
    responses(
        (status = 200, description = "the transactions", body = Vec<TransactionView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody)))]
pub async fn transactions(
    State(central): State<Arc<Central>>,
    Query(q): Query<TransactionQuery>,
) -> ApiResult<Json<Vec<TransactionView>>> {
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
        .repo()
        .transactions(q.pile.as_deref().filter(|p| !p.is_empty()), active)
        .await?;
    Ok(Json(rows.iter().map(transaction_view).collect()))
}

fn transaction_id(id: &str) -> ApiResult<i64> {
    id.parse()
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a transaction id")))
}

/// One transaction
#[utoipa::path(get, path = "/api/transactions/{id}", operation_id = "show_transaction", tag = "records",
    params(("id" = i64, Path, description = "the transactionId")),
    responses(
        (status = 200, description = "the transaction", body = TransactionView),
        (status = 400, description = "the id is not a number; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such transaction", body = ErrorBody)))]
pub async fn transaction(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<TransactionView>> {
    let id = transaction_id(&id)?;
    let t = central
        .repo()
        .transaction(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no transaction {id}")))?;
    Ok(Json(transaction_view(&t)))
}

/// A MeterValues sample of a transaction.
#[derive(Serialize, ToSchema)]
#[schema(as = MeterValue)]
pub struct MeterValueView {
    #[schema(format = DateTime)]
    time: String,
    connector: i64,
    /// The OCPP sampledValue list as the pile sent it.
    sampled_value: Value,
}

/// Its meter values in time order
#[utoipa::path(get, path = "/api/transactions/{id}/meter-values", operation_id = "transaction_meter_values", tag = "records",
    params(("id" = i64, Path, description = "the transactionId")),
    responses(
        (status = 200, description = "the meter values", body = Vec<MeterValueView>),
        (status = 400, description = "the id is not a number; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such transaction", body = ErrorBody)))]
pub async fn meter_values(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MeterValueView>>> {
    let id = transaction_id(&id)?;
    central
        .repo()
        .transaction(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no transaction {id}")))?;
    let rows = central.repo().meter_values(id).await?;
    Ok(Json(
        rows.into_iter()
            .map(|m| MeterValueView {
                time: time(m.time),
                connector: m.connector,
                sampled_value: serde_json::from_str::<Value>(&m.sampled).unwrap_or(Value::Null),
            })
            .collect(),
    ))
}

/// An idTag the central authorizes by (an unknown one authorizes as Invalid).
#[derive(Serialize, ToSchema)]
#[schema(as = IdTag)]
pub struct IdTagView {
    id_tag: String,
    #[schema(schema_with = schema::id_tag_status)]
    status: String,
    #[schema(format = DateTime)]
    expiry_date: Option<String>,
    parent_id_tag: Option<String>,
}

fn id_tag_view(t: &IdTagRow) -> IdTagView {
    IdTagView {
        id_tag: t.id_tag.clone(),
        status: t.status.clone(),
        expiry_date: time_opt(t.expiry_date),
        parent_id_tag: t.parent_id_tag.clone(),
    }
}

/// An idTag to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewIdTag {
    #[schema(min_length = 1, max_length = 20)]
    id_tag: String,
    #[schema(schema_with = schema::id_tag_status)]
    status: String,
    /// RFC 3339; past it the idTag authorizes as Expired.
    #[schema(format = DateTime)]
    expiry_date: Option<String>,
    #[schema(min_length = 1, max_length = 20)]
    parent_id_tag: Option<String>,
}

/// An idTag to set.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IdTagSettings)]
struct IdTagBody {
    /// The path's, if given.
    #[schema(min_length = 1, max_length = 20)]
    id_tag: Option<String>,
    #[schema(schema_with = schema::id_tag_status)]
    status: String,
    /// RFC 3339; past it the idTag authorizes as Expired.
    #[schema(format = DateTime)]
    expiry_date: Option<String>,
    #[schema(min_length = 1, max_length = 20)]
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

/// All idTags
#[utoipa::path(get, path = "/api/id-tags", operation_id = "list_id_tags", tag = "id-tags",
    responses((status = 200, description = "the idTags", body = Vec<IdTagView>)))]
pub async fn id_tags(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<IdTagView>>> {
    Ok(Json(
        central
            .repo()
            .id_tags()
            .await?
            .iter()
            .map(id_tag_view)
            .collect(),
    ))
}

/// One idTag
#[utoipa::path(get, path = "/api/id-tags/{tag}", operation_id = "show_id_tag", tag = "id-tags",
    params(("tag" = String, Path, example = "CARD1", min_length = 1)),
    responses(
        (status = 200, description = "the idTag", body = IdTagView),
        (status = 404, description = "no such idTag", body = ErrorBody)))]
pub async fn id_tag(
    State(central): State<Arc<Central>>,
    Path(tag): Path<String>,
) -> ApiResult<Json<IdTagView>> {
    let t = central
        .repo()
        .id_tag(&tag)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no idTag {tag:?}")))?;
    Ok(Json(id_tag_view(&t)))
}

/// Add an idTag
#[utoipa::path(post, path = "/api/id-tags", operation_id = "add_id_tag", tag = "id-tags",
    request_body = NewIdTag,
    responses(
        (status = 201, description = "added", body = IdTagView),
        (status = 400, description = "the body does not fit; the reason is in `error`", body = ErrorBody),
        (status = 409, description = "it exists; PUT changes it", body = ErrorBody)))]
pub async fn post_id_tag(
    State(central): State<Arc<Central>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<IdTagView>)> {
    let b: NewIdTag = json_body(&body)?;
    let tag = b.id_tag;
    let b = IdTagBody {
        id_tag: None,
        status: b.status,
        expiry_date: b.expiry_date,
        parent_id_tag: b.parent_id_tag,
    };
    if central.repo().id_tag(&tag).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "idTag {tag:?} exists; PUT changes it"
        )));
    }
    let row = id_tag_row(tag, b)?;
    central
        .writer()
        .write(WriteOp::PutIdTag(row.clone()))
        .await?;
    Ok((StatusCode::CREATED, Json(id_tag_view(&row))))
}

/// Set an idTag (added when it is new)
#[utoipa::path(put, path = "/api/id-tags/{tag}", operation_id = "set_id_tag", tag = "id-tags",
    params(("tag" = String, Path, example = "CARD1", min_length = 1, max_length = 20)),
    request_body = IdTagBody,
    responses(
        (status = 200, description = "set", body = IdTagView),
        (status = 400, description = "the body or the tag does not fit; the reason is in `error`", body = ErrorBody)))]
pub async fn put_id_tag(
    State(central): State<Arc<Central>>,
    Path(tag): Path<String>,
    body: Bytes,
) -> ApiResult<Json<IdTagView>> {
    let b: IdTagBody = json_body(&body)?;
    if b.id_tag.as_ref().is_some_and(|t| *t != tag) {
        return Err(ApiError::bad_request(
            "id_tag in the body differs from the path",
        ));
    }
    let row = id_tag_row(tag, b)?;
    central
        .writer()
        .write(WriteOp::PutIdTag(row.clone()))
        .await?;
    Ok(Json(id_tag_view(&row)))
}

/// Remove an idTag
#[utoipa::path(delete, path = "/api/id-tags/{tag}", operation_id = "delete_id_tag", tag = "id-tags",
    params(("tag" = String, Path, example = "CARD1", min_length = 1)),
    responses(
        (status = 204, description = "removed"),
        (status = 404, description = "no such idTag", body = ErrorBody)))]
pub async fn delete_id_tag(
    State(central): State<Arc<Central>>,
    Path(tag): Path<String>,
) -> ApiResult<StatusCode> {
    match central
        .writer()
        .write(WriteOp::DeleteIdTag {
            id_tag: tag.clone(),
        })
        .await?
    {
        WriteResult::Affected(0) => Err(ApiError::not_found(format!("no idTag {tag:?}"))),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// A websocket handshake the central refused.
#[derive(Serialize, ToSchema)]
#[schema(as = RefusedHandshake)]
pub struct RefusedView {
    #[schema(format = DateTime)]
    time: String,
    /// The client's address and port.
    remote: String,
    /// Null when the path named none.
    identity: Option<String>,
    reason: String,
    /// The status it was answered with; 0 for a TLS handshake that failed.
    http_status: i64,
}

/// Refused websocket handshakes, newest first
#[utoipa::path(get, path = "/api/handshakes/refused", operation_id = "refused_handshakes", tag = "records",
    params(Limit),
    responses(
        (status = 200, description = "the refusals", body = Vec<RefusedView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody)))]
pub async fn refused(
    State(central): State<Arc<Central>>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<RefusedView>>> {
    let rows = central.repo().refused(q.rows()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| RefusedView {
                time: time(r.time),
                remote: r.remote,
                identity: r.identity,
                reason: r.reason,
                http_status: r.http_status,
            })
            .collect(),
    ))
}
