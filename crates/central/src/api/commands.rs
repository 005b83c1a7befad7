//! `POST /api/piles/{id}/commands/{Action}`: any central-to-pile action, decoded strictly (but
//! for date-times: any RFC 3339 form, normalised to UTC milliseconds), sent through the pile's
//! queue, its answer awaited; every command and its result stored.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ocpp::{Action, Initiator, Policy, Request};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::piles::find;
use super::records::Limit;
use super::schema::PileId;
use super::{time, time_opt, ApiError, ApiResult, ErrorBody};
use crate::command_log::{call_recorded, describe, CommandFailure, PileAnswer};
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

/// Decodes a command's payload strictly, but for its date-times, which may be any RFC 3339 form
/// (Python's `isoformat()`, an offset); the canonical encoding to send, in OCPP-J's form (UTC,
/// milliseconds, `Z`).
pub fn decode_payload(action: Action, body: &[u8]) -> ApiResult<String> {
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the payload is not UTF-8"))?;
    let text = if text.trim().is_empty() { "{}" } else { text };
    let decoded = Request::decode(action, text, Policy::Input)
        .map_err(|e| ApiError::bad_request(format!("{action} payload: {e}")))?;
    Ok(decoded.value.to_json())
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

/// Send any central-to-pile OCPP 1.6 action; waits for the answer
///
/// The payload is decoded strictly first: one that does not fit is refused and nothing is
/// sent. The command waits in the pile's queue (one CALL outstanding), then for the answer.
/// Every command and its result is stored.
#[utoipa::path(post, path = "/api/piles/{id}/commands/{action}", operation_id = "send_command", tag = "commands",
    params(PileId,
        ("action" = String, Path, example = "Reset", description = "the OCPP action name, e.g. Reset")),
    request_body(content = Object, description = "the OCPP payload of the action; an empty body is `{}`"),
    responses(
        (status = 200, description = "the pile's answer", body = PileAnswer),
        (status = 400, description = "the payload does not fit the action, or the action is sent by piles; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile, or no such OCPP 1.6 action", body = ErrorBody),
        (status = 409, description = "the pile is not connected (answered at once)", body = ErrorBody),
        (status = 502, description = "the pile answered with a CALLERROR (`call_error`: code, description), or the connection closed, or its answer did not decode", body = CommandFailure),
        (status = 503, description = "in a cluster: the NATS server did not take the command to the pile's node", body = ErrorBody),
        (status = 504, description = "the pile did not answer within the command timeout", body = ErrorBody)))]
pub async fn send(
    State(central): State<Arc<Central>>,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let action = command_action(&action)?;
    let mut payload = decode_payload(action, &body)?;
    find(&central, &id).await?;
    if action == Action::ChangeConfiguration && super::pile_security::sets_password(&payload) {
        return Err(ApiError::bad_request(format!(
            "the AuthorizationKey is the pile's password: POST /api/piles/{id}/password/rotate \
             changes it, so that the central knows it"
        )));
    }
    if action == Action::RemoteStartTransaction {
        // A pile of a site: the session starts under a profile (FAQ 3.15).
        payload = crate::site::runtime::remote_start_payload(&central, &id, payload).await?;
    }
    Ok(deliver(&central, &id, action, payload).await)
}

/// A command sent through the API or by a campaign, and its result.
#[derive(Serialize, ToSchema)]
#[schema(as = Command)]
pub struct CommandView {
    id: i64,
    action: String,
    /// The OCPP payload sent.
    payload: Value,
    #[schema(format = DateTime)]
    sent_at: String,
    /// Null while it waits.
    #[schema(format = DateTime)]
    answered_at: Option<String>,
    /// `response`, `call_error`, `timeout`, `not_connected`, `disconnected`, `bad_response` or `unavailable` (in a cluster, NATS did
    /// not take the request to the pile's node);
    /// null while it waits.
    outcome: Option<String>,
    /// What the command answered (as `POST .../commands/{action}` does); null while it waits.
    result: Option<Value>,
}

/// Commands sent and their results, newest first
#[utoipa::path(get, path = "/api/piles/{id}/commands", operation_id = "list_commands", tag = "commands",
    params(PileId, Limit),
    responses(
        (status = 200, description = "the commands", body = Vec<CommandView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn list(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<Vec<CommandView>>> {
    find(&central, &id).await?;
    let rows = central.repo().commands(&id, q.rows()).await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| CommandView {
                id: c.id,
                action: c.action,
                payload: serde_json::from_str::<Value>(&c.payload).unwrap_or(Value::Null),
                sent_at: time(c.sent_at),
                answered_at: time_opt(c.answered_at),
                outcome: c.outcome,
                result: c
                    .result
                    .and_then(|r| serde_json::from_str::<Value>(&r).ok()),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde_json::json;

    /// A ReserveNow's expiryDate as the API takes it: what is accepted and goes to the pile
    /// (None: refused with 400).
    #[test]
    fn date_times_in_commands_are_any_rfc_3339_form_and_go_out_in_ocpp_js() {
        let table: &[(&str, Option<&str>)] = &[
            ("2026-12-03T18:54:28.976Z", Some("2026-12-03T18:54:28.976Z")),
            ("2026-12-03T18:54:28Z", Some("2026-12-03T18:54:28.000Z")),
            ("2026-12-03T18:54:28.9Z", Some("2026-12-03T18:54:28.900Z")),
            // Python's datetime.isoformat(): microseconds, and +00:00 for an aware UTC time.
            (
                "2026-12-03T18:54:28.976683Z",
                Some("2026-12-03T18:54:28.976Z"),
            ),
            (
                "2026-12-03T18:54:28.976683+00:00",
                Some("2026-12-03T18:54:28.976Z"),
            ),
            (
                "2026-12-03T18:54:28.123456789Z",
                Some("2026-12-03T18:54:28.123Z"),
            ),
            (
                "2026-12-03T19:54:28.5+01:00",
                Some("2026-12-03T18:54:28.500Z"),
            ),
            (
                "2026-12-03T13:24:28-05:30",
                Some("2026-12-03T18:54:28.000Z"),
            ),
            (
                "2026-12-04T01:54:28+07:00",
                Some("2026-12-03T18:54:28.000Z"),
            ),
            ("2026-12-03t18:54:28z", Some("2026-12-03T18:54:28.000Z")),
            // Not RFC 3339: no zone, no seconds, no time, out of range, not a date.
            ("2026-12-03T18:54:28", None),
            ("2026-12-03T18:54:28.976683", None),
            ("2026-12-03T18:54Z", None),
            ("2026-12-03", None),
            ("2026-13-03T18:54:28Z", None),
            ("2026-12-03T25:54:28Z", None),
            ("2026-12-03T18:54:28+25:00", None),
            ("9999-12-31T23:59:59-01:00", None),
            ("1764788068", None),
            ("tomorrow", None),
            ("", None),
        ];
        for (given, sent) in table {
            let body = json!({
                "connectorId": 1, "expiryDate": given, "idTag": "CARD", "reservationId": 7,
            });
            let decoded = decode_payload(Action::ReserveNow, body.to_string().as_bytes());
            match (decoded, sent) {
                (Ok(payload), Some(sent)) => {
                    let payload: Value = serde_json::from_str(&payload).unwrap();
                    assert_eq!(payload["expiryDate"], *sent, "{given:?}");
                }
                (Err(ApiError(code, why)), None) => {
                    assert_eq!(code, StatusCode::BAD_REQUEST, "{given:?}");
                    assert!(
                        why.contains("expected an RFC 3339 date-time") && why.contains(given),
                        "{given:?}: {why}"
                    );
                }
                (Ok(payload), None) => panic!("{given:?} accepted as {payload}"),
                (Err(e), Some(_)) => panic!("{given:?} refused: {}", e.1),
            }
        }
    }

    /// The same rule in every command that carries a date-time.
    #[test]
    fn every_commands_date_times_are_normalised() {
        let profile = json!({
            "chargingProfileId": 1, "stackLevel": 0,
            "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Absolute",
            "validFrom": "2026-12-03T18:54:28.976683+00:00",
            "validTo": "2026-12-04T18:54:28.976683+02:00",
            "chargingSchedule": {
                "chargingRateUnit": "A", "startSchedule": "2026-12-03T18:54:28.1234Z",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
            },
        });
        let cases = [
            (
                Action::UpdateFirmware,
                json!({"location": "http://h/fw.bin", "retrieveDate": "2026-12-03T18:54:28.976683Z"}),
            ),
            (
                Action::SetChargingProfile,
                json!({"connectorId": 1, "csChargingProfiles": profile}),
            ),
            (
                Action::RemoteStartTransaction,
                json!({"idTag": "CARD", "connectorId": 1, "chargingProfile": profile}),
            ),
            (
                Action::GetDiagnostics,
                json!({"location": "ftp://h/", "startTime": "2026-12-03T18:54:28.976683-01:00"}),
            ),
        ];
        for (action, body) in cases {
            let payload = decode_payload(action, body.to_string().as_bytes())
                .unwrap_or_else(|e| panic!("{action}: {}", e.1));
            let mut times = Vec::new();
            collect_times(&serde_json::from_str(&payload).unwrap(), &mut times);
            assert!(!times.is_empty(), "{action}: {payload}");
            for t in times {
                // Strict decoding takes it, and it is the canonical form (UTC, ms, `Z`).
                let strict = t.parse::<ocpp::Timestamp>().map(|p| p.to_string());
                assert_eq!(strict.as_deref(), Ok(t.as_str()), "{action}: {t}");
            }
        }
    }

    /// Every string of `v` that looks like a date-time.
    fn collect_times(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) if s.len() > 18 && s.as_bytes()[4] == b'-' => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| collect_times(v, out)),
            Value::Object(o) => o.values().for_each(|v| collect_times(v, out)),
            _ => {}
        }
    }
}
