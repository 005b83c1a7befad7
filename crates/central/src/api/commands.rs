//! `POST /api/piles/{id}/commands/{Action}`: any central-to-pile action, decoded strictly, sent
//! through the pile's queue, its answer awaited; every command and its result stored.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ocpp::{Action, Initiator, Policy, Request};
use serde::Deserialize;
use serde_json::{json, Value};

use super::piles::find;
use super::{time, time_opt, ApiError, ApiResult};
use crate::metrics::ActionLabels;
use crate::sessions::{Delivery, DeliveryError};
use crate::store::{WriteOp, WriteResult};
use crate::Central;

/// Finds a central-to-pile action by its OCPP name.
pub fn command_action(name: &str) -> ApiResult<Action> {
    let action = Action::from_name(name)
        .ok_or_else(|| ApiError::not_found(format!("{name:?} is not an OCPP 1.6 action")))?;
    if action.initiator() == Initiator::ChargePoint {
        return Err(ApiError::bad_request(format!(
            "{name} is sent by piles to the central system, not to piles"
        )));
    }
    Ok(action)
}

/// Decodes a command's payload strictly; the canonical encoding to send.
pub fn decode_payload(action: Action, body: &[u8]) -> ApiResult<String> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the payload is not UTF-8"))?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    let decoded = Request::decode(action, text, Policy::Strict)
        .map_err(|e| ApiError::bad_request(format!("{action} payload: {e}")))?;
    Ok(decoded.value.to_json())
}

/// Sends a command and stores it with its result (also for the commands campaigns send).
pub async fn call_recorded(
    central: &Central,
    pile: &str,
    action: Action,
    payload: String,
) -> Result<Result<ocpp::Decoded<ocpp::Response>, DeliveryError>, crate::store::StoreError> {
    let recorded = central
        .writer
        .write(WriteOp::CommandSent {
            pile: pile.to_owned(),
            action: action.as_str().to_owned(),
            payload: payload.clone(),
        })
        .await?;
    let WriteResult::Command(id) = recorded else {
        return Err(crate::store::StoreError::Failed(
            "unexpected store answer".into(),
        ));
    };
    let started = Instant::now();
    let outcome = if central.sessions.is_connected(pile) {
        central.metrics.commands_waiting.inc();
        let wait = central.options.command_timeout + std::time::Duration::from_secs(1);
        let r = tokio::time::timeout(wait, central.sessions.call(pile, action, payload))
            .await
            .unwrap_or(Err(DeliveryError::Timeout));
        central.metrics.commands_waiting.dec();
        central
            .metrics
            .command_latency
            .get_or_create(&ActionLabels {
                action: action.as_str().to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
        r
    } else {
        Err(DeliveryError::NotConnected)
    };
    let (_, kind, body) = describe(central, pile, &outcome);
    if let Err(e) = central
        .writer
        .write(WriteOp::CommandDone {
            id,
            outcome: kind.into(),
            result: Some(body.to_string()),
        })
        .await
    {
        tracing::error!("command {id}: result not stored: {e}");
    }
    Ok(outcome)
}

/// A command's outcome as the API shows it: the HTTP status, the outcome's name, the body.
fn describe(
    central: &Central,
    pile: &str,
    outcome: &Result<ocpp::Decoded<ocpp::Response>, DeliveryError>,
) -> (StatusCode, &'static str, Value) {
    match outcome {
        Ok(answer) => {
            let response: Value =
                serde_json::from_str(&answer.value.to_json()).expect("our encoding is JSON");
            (StatusCode::OK, "response", json!({ "response": response }))
        }
        Err(DeliveryError::CallError(e)) => (
            StatusCode::BAD_GATEWAY,
            "call_error",
            json!({ "call_error": { "code": e.code.as_str(), "description": e.description } }),
        ),
        Err(DeliveryError::Timeout) => (
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            json!({ "error": format!("the pile did not answer within {:?}", central.options.command_timeout) }),
        ),
        Err(DeliveryError::NotConnected) => (
            StatusCode::CONFLICT,
            "not_connected",
            json!({ "error": format!("pile {pile:?} is not connected") }),
        ),
        Err(e @ DeliveryError::Disconnected) => (
            StatusCode::BAD_GATEWAY,
            "disconnected",
            json!({ "error": e.to_string() }),
        ),
        Err(e @ DeliveryError::BadResponse(_)) => (
            StatusCode::BAD_GATEWAY,
            "bad_response",
            json!({ "error": e.to_string() }),
        ),
    }
}

/// Sends a command and stores it with its result; the HTTP answer.
pub async fn deliver(central: &Central, pile: &str, action: Action, payload: String) -> Response {
    let outcome = match call_recorded(central, pile, action, payload).await {
        Ok(outcome) => outcome,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (status, _, body) = describe(central, pile, &outcome);
    (status, Json(body)).into_response()
}

pub async fn send(
    State(central): State<Arc<Central>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let action = command_action(&action)?;
    let payload = decode_payload(action, &body)?;
    find(&central, &id).await?;
    Ok(deliver(&central, &id, action, payload).await)
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

pub async fn list(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<Value>>> {
    find(&central, &id).await?;
    let rows = central
        .repo
        .commands(&id, q.limit.unwrap_or(100).clamp(1, 10_000))
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "action": c.action,
                    "payload": serde_json::from_str::<Value>(&c.payload).unwrap_or(Value::Null),
                    "sent_at": time(c.sent_at),
                    "answered_at": time_opt(c.answered_at),
                    "outcome": c.outcome,
                    "result": c.result.and_then(|r| serde_json::from_str::<Value>(&r).ok()),
                })
            })
            .collect(),
    ))
}
