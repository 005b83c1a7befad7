//! The security extension's API: the central's CA certificate, a pile's certificate renewed
//! (ExtendedTriggerMessage SignChargePointCertificate), the certificates signed for a pile and
//! the CSRs refused, and the security events.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ocpp::{Action, ExtendedMessageTrigger, ExtendedTriggerMessageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::commands::deliver;
use super::piles::find;
use super::records::Limit;
use super::schema::PileId;
use super::{time, ApiError, ApiResult, ErrorBody};
use crate::command_log::{CommandFailure, PileAnswer};
use crate::security::CSR_REFUSED;
use crate::store::{Millis, SecurityEventRow};
use crate::Central;

/// The most rows a list answers.
const MAX_LIMIT: i64 = 1000;

/// The central's CA certificate
///
/// The CA that signs the piles' CSRs (SignCertificate) and that the TLS listener trusts for
/// the piles' client certificates (Security Profile 3).
#[utoipa::path(get, path = "/api/security/ca", operation_id = "security_ca", tag = "security",
    responses((status = 200, description = "the CA certificate, PEM",
        content_type = "application/x-pem-file", body = String)))]
pub async fn ca(State(central): State<Arc<Central>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        central.ca().certificate_pem().to_owned(),
    )
        .into_response()
}

/// Ask a pile to renew its certificate
///
/// Sends ExtendedTriggerMessage SignChargePointCertificate: a pile that accepts sends a
/// SignCertificate, whose CSR the central checks and signs (see
/// `GET /api/piles/{id}/certificates`).
#[utoipa::path(post, path = "/api/piles/{id}/certificate/renew", operation_id = "renew_certificate", tag = "security",
    params(PileId),
    responses(
        (status = 200, description = "the pile's answer to the ExtendedTriggerMessage", body = PileAnswer),
        (status = 404, description = "no such pile", body = ErrorBody),
        (status = 409, description = "the pile is not connected (answered at once)", body = ErrorBody),
        (status = 502, description = "the pile answered with a CALLERROR (`call_error`: code, description), or the connection closed, or its answer did not decode", body = CommandFailure),
        (status = 503, description = "in a cluster: the NATS server did not take the command to the pile's node", body = ErrorBody),
        (status = 504, description = "the pile did not answer within the command timeout", body = ErrorBody)))]
pub async fn renew(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    find(&central, &id).await?;
    let request = ExtendedTriggerMessageRequest {
        requested_message: ExtendedMessageTrigger::SignChargePointCertificate,
        connector_id: None,
    };
    let payload = ocpp::encode(&request);
    Ok(deliver(&central, &id, Action::ExtendedTriggerMessage, payload).await)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// At most this many (default 100, 1 to 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Only events before this time (RFC 3339), for the next page.
    before: Option<String>,
}

impl EventQuery {
    /// The limit and the time before, checked.
    fn read(&self) -> ApiResult<(i64, Option<Millis>)> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::bad_request(format!(
                "`limit` must be 1 to {MAX_LIMIT}"
            )));
        }
        let before = match self.before.as_deref() {
            None => None,
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t)
                    .map_err(|e| ApiError::bad_request(format!("`before` {t:?}: {e}")))?
                    .timestamp_millis(),
            ),
        };
        Ok((limit, before))
    }
}

/// A security event: a pile's SecurityEventNotification, or the central's own (a CSR it
/// refused: `SignCertificateRejected`, the reason in `tech_info`).
#[derive(Serialize, ToSchema)]
#[schema(as = SecurityEvent)]
pub struct SecurityEventView {
    pile: String,
    /// The pile's timestamp (the central's clock for its own events).
    #[schema(format = DateTime)]
    time: String,
    /// The event's type, e.g. FirmwareUpdated, InvalidCentralSystemCertificate.
    #[serde(rename = "type")]
    kind: String,
    tech_info: Option<String>,
    /// `pile`, or `central` for the central's own.
    #[schema(example = "pile")]
    source: String,
    #[schema(format = DateTime)]
    received_at: String,
}

fn event_view(r: SecurityEventRow) -> SecurityEventView {
    SecurityEventView {
        pile: r.pile,
        time: time(r.time),
        kind: r.kind,
        tech_info: r.tech_info,
        source: r.source,
        received_at: time(r.received_at),
    }
}

/// Every pile's security events, newest first
#[utoipa::path(get, path = "/api/security-events", operation_id = "security_events", tag = "security",
    params(EventQuery),
    responses(
        (status = 200, description = "the events", body = Vec<SecurityEventView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody)))]
pub async fn events(
    State(central): State<Arc<Central>>,
    Query(q): Query<EventQuery>,
) -> ApiResult<Json<Vec<SecurityEventView>>> {
    let (limit, before) = q.read()?;
    let rows = central
        .repo()
        .security_events(None, None, before, limit)
        .await?;
    Ok(Json(rows.into_iter().map(event_view).collect()))
}

/// A pile's security events, newest first
#[utoipa::path(get, path = "/api/piles/{id}/security-events", operation_id = "pile_security_events", tag = "security",
    params(PileId, EventQuery),
    responses(
        (status = 200, description = "the events", body = Vec<SecurityEventView>),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn pile_events(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<EventQuery>,
) -> ApiResult<Json<Vec<SecurityEventView>>> {
    let (limit, before) = q.read()?;
    find(&central, &id).await?;
    let rows = central
        .repo()
        .security_events(Some(&id), None, before, limit)
        .await?;
    Ok(Json(rows.into_iter().map(event_view).collect()))
}

/// A certificate the central's CA signed for the pile.
#[derive(Serialize, ToSchema)]
#[schema(as = SignedCertificate)]
pub struct CertificateView {
    /// The serial number, hex.
    serial: String,
    #[schema(format = DateTime)]
    not_before: String,
    #[schema(format = DateTime)]
    not_after: String,
    #[schema(format = DateTime)]
    signed_at: String,
    /// The pile's answer to the CertificateSigned (`Accepted`, `Rejected`), or why there is
    /// none (`not_connected`, `timeout`, ... as for commands); null while it is sent.
    delivery: Option<String>,
    /// The certificate, PEM.
    certificate: String,
}

/// A CSR the central refused.
#[derive(Serialize, ToSchema)]
pub struct RefusedCsr {
    #[schema(format = DateTime)]
    time: String,
    reason: Option<String>,
}

/// The certificates signed for a pile and the CSRs refused.
#[derive(Serialize, ToSchema)]
pub struct PileCertificates {
    /// Newest first.
    signed: Vec<CertificateView>,
    /// Newest first.
    refused: Vec<RefusedCsr>,
}

/// What the central signed for a pile, and the CSRs it refused
#[utoipa::path(get, path = "/api/piles/{id}/certificates", operation_id = "pile_certificates", tag = "security",
    params(PileId, Limit),
    responses(
        (status = 200, description = "the certificates signed and the CSRs refused, each newest first", body = PileCertificates),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody)))]
pub async fn certificates(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> ApiResult<Json<PileCertificates>> {
    find(&central, &id).await?;
    let signed = central.repo().certificates(&id, q.rows()).await?;
    let refused = central
        .repo()
        .security_events(Some(&id), Some(CSR_REFUSED), None, q.rows())
        .await?;
    Ok(Json(PileCertificates {
        signed: signed
            .into_iter()
            .map(|c| CertificateView {
                serial: c.serial,
                not_before: time(c.not_before),
                not_after: time(c.not_after),
                signed_at: time(c.signed_at),
                delivery: c.delivery,
                certificate: c.certificate,
            })
            .collect(),
        refused: refused
            .into_iter()
            .map(|r| RefusedCsr {
                time: time(r.time),
                reason: r.tech_info,
            })
            .collect(),
    }))
}
