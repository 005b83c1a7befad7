//! A pile's Security Profile and password: `PATCH /api/piles/{id}` sets them (a lowering only
//! explicitly), `POST /api/piles/{id}/password/rotate` gives the pile a new AuthorizationKey.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use ocpp::{Action, ChangeConfigurationRequest, CiString50, CiString500, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::piles::{find, require_connected, view_of, PileView};
use super::{json_body, schema, ApiError, ApiResult, ErrorBody};
use crate::sessions::DeliveryError;
use crate::store::{WriteOp, WriteResult};
use crate::{command_log, secrets, Central};

/// The key a pile of the security whitepaper takes its Basic password from.
const AUTHORIZATION_KEY: &str = "AuthorizationKey";

/// Whether a ChangeConfiguration payload sets the AuthorizationKey (only a rotation may: the
/// central would not know the pile's password, nor keep it out of the command log).
pub(super) fn sets_password(payload: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|p| p.get("key")?.as_str().map(str::to_owned))
        .is_some_and(|key| key.eq_ignore_ascii_case(AUTHORIZATION_KEY))
}

/// Records a change of a pile's security among its events (`GET /api/piles/{id}/events`).
async fn event(central: &Central, pile: &str, kind: &str, detail: String) -> ApiResult<()> {
    central
        .writer()
        .write(WriteOp::Event {
            pile: pile.to_owned(),
            kind: kind.to_owned(),
            detail,
            firmware_status: None,
            diagnostics_status: None,
        })
        .await?;
    Ok(())
}

/// A password an operator sets: 8 to 64 characters, no control characters.
pub(super) fn check_password(password: &str) -> ApiResult<()> {
    // OCPP 1.6 security whitepaper: 16 to 40 characters; we take 8 to 64, printable.
    let length = password.chars().count();
    if !(8..=64).contains(&length) || password.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(
            "password: 8 to 64 characters, no control characters",
        ));
    }
    Ok(())
}

/// Whether this central can hold a pile to `profile` (with a password or not).
pub(super) fn check_profile(central: &Central, profile: i64, has_password: bool) -> ApiResult<()> {
    let options = central.options();
    let why = if !(0..=3).contains(&profile) {
        format!("security_profile {profile}: 0 to 3")
    } else if profile >= 2 && options.tls_cert.is_none() {
        format!(
            "security_profile {profile} needs TLS: this central runs without --tls-cert and \
             --tls-key"
        )
    } else if (1..=2).contains(&profile) && !has_password {
        format!("security_profile {profile} needs a password (Basic authentication)")
    } else {
        return Ok(());
    };
    Err(ApiError::bad_request(why))
}

/// The Argon2id hash of a password, computed off the runtime's threads.
pub(super) async fn hash(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || secrets::hash_password(password.as_bytes()))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// What to change of a pile's security; the fields left out stay.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SecurityChange {
    /// Its Security Profile: raised at once; lowered below the profile set or the one it
    /// connected with only with `allow_downgrade`.
    #[schema(minimum = 0, maximum = 3)]
    security_profile: Option<i64>,
    /// Lowering on purpose: the profile it connected with is forgotten too (its next
    /// handshake records it again).
    #[serde(default)]
    allow_downgrade: bool,
    /// A new Basic password (the former one, and one kept after a rotation, stop working).
    #[schema(
        min_length = 8,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    password: Option<String>,
}

/// Set a pile's Security Profile or password
///
/// A handshake below the pile's profile, or below the highest profile it has connected with,
/// is refused. Lowering either needs `allow_downgrade: true`, which also forgets the one it
/// connected with.
#[utoipa::path(patch, path = "/api/piles/{id}", operation_id = "change_pile_security", tag = "piles",
    params(schema::PileId),
    request_body = SecurityChange,
    responses(
        (status = 200, description = "the pile as changed", body = PileView),
        (status = 400, description = "the body does not fit, or this central cannot hold the \
            profile (2 and 3 need TLS, 1 and 2 a password); the reason is in `error`",
            body = ErrorBody),
        (status = 404, description = "no such pile", body = ErrorBody),
        (status = 409, description = "a lowering without `allow_downgrade`", body = ErrorBody)))]
pub async fn change(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<PileView>> {
    let change: SecurityChange = json_body(&body)?;
    if change.security_profile.is_none() && change.password.is_none() && !change.allow_downgrade {
        return Err(ApiError::bad_request(
            "nothing to change: security_profile, allow_downgrade or password",
        ));
    }
    if let Some(pw) = &change.password {
        check_password(pw)?;
    }
    let pile = find(&central, &id).await?;
    let profile = change.security_profile.unwrap_or(pile.security_profile);
    let has_password = pile.password_hash.is_some() || change.password.is_some();
    check_profile(&central, profile, has_password)?;
    let lowering = |p: i64| {
        ApiError::conflict(format!(
            "security_profile {p} is below the pile's (set {}, connected with {}): lowering it \
             needs \"allow_downgrade\": true",
            pile.security_profile, pile.connected_profile
        ))
    };
    // Only a profile asked for is checked: a new password alone lowers nothing.
    if change.security_profile.is_some()
        && profile < pile.required_profile()
        && !change.allow_downgrade
    {
        return Err(lowering(profile));
    }
    let has_new_password = change.password.is_some();
    let password_hash = match change.password {
        Some(pw) => Some(hash(pw).await?),
        None => None,
    };
    let written = central
        .writer()
        .write(WriteOp::SetSecurity {
            id: id.clone(),
            security_profile: change.security_profile,
            allow_downgrade: change.allow_downgrade,
            password_hash,
        })
        .await?;
    if written == WriteResult::Affected(0) {
        // Deleted meanwhile, or it connected with a higher profile since it was read.
        let now = find(&central, &id).await?;
        return Err(lowering(now.security_profile.max(now.connected_profile)));
    }
    let mut what = Vec::new();
    if let Some(p) = change.security_profile {
        what.push(format!(
            "security profile {p} (was {})",
            pile.security_profile
        ));
    }
    if change.allow_downgrade {
        what.push(format!(
            "allow_downgrade: the profile it connected with ({}) forgotten",
            pile.connected_profile
        ));
    }
    if has_new_password {
        what.push("a new password".into());
    }
    event(&central, &id, "SecurityChanged", what.join("; ")).await?;
    Ok(Json(view_of(&central, &id).await?))
}

/// A rotation the pile took.
#[derive(Serialize, ToSchema)]
pub struct Rotated {
    /// The pile's answer to ChangeConfiguration AuthorizationKey: Accepted or RebootRequired.
    status: String,
    pile: PileView,
}

/// Rotate a pile's password: a new AuthorizationKey sent with ChangeConfiguration
///
/// The key is 20 random bytes as 40 hex digits, never shown or stored (only its Argon2id
/// hash, and the command is recorded with `***` for its value). The key is a Basic password
/// of the pile from the moment it is sent; once the pile answers Accepted (or
/// RebootRequired), the former one stays valid until the pile connects with the new one, and
/// no other rotation starts before (409). Rejected, NotSupported, a CALLERROR or a pile not
/// connected take the new key back (409). Without
/// an answer to read (504, or 502 when the connection closed first or the answer does not
/// decode) the pile may have taken the key: both passwords stay valid until it connects with
/// the new one.
#[utoipa::path(post, path = "/api/piles/{id}/password/rotate", operation_id = "rotate_pile_password", tag = "piles",
    params(schema::PileId),
    responses(
        (status = 200, description = "the pile took the new key", body = Rotated),
        (status = 404, description = "no such pile", body = ErrorBody),
        (status = 409, description = "the pile is not connected, did not take the key, or has \
            not connected with the last rotation's yet; the old password stays", body = ErrorBody),
        (status = 502, description = "the connection closed before the pile answered, or its \
            answer does not decode; both passwords stay valid", body = ErrorBody),
        (status = 503, description = "the pile's node cannot be reached; the old password stays",
            body = ErrorBody),
        (status = 504, description = "the pile did not answer in time; both passwords stay valid",
            body = ErrorBody)))]
pub async fn rotate(
    State(central): State<Arc<Central>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Rotated>> {
    let pile = find(&central, &id).await?;
    let stays = ": the old password stays";
    if pile.previous_password_hash.is_some() {
        // Another rotation now could end the one password the pile still knows.
        return Err(ApiError::conflict(format!(
            "the pile has not connected with the password of the last rotation yet (the one \
             before stays valid until it does): rotate again once it has, or set a password \
             with PATCH{stays}"
        )));
    }
    require_connected(&central, &id)
        .await
        .map_err(|ApiError(status, why)| ApiError(status, format!("{why}{stays}")))?;
    let key = secrets::new_authorization_key();
    // The new key is a password before it is sent: the pile that takes it reconnects with it
    // at once, maybe before its answer is read here.
    let password_hash = hash(key.clone()).await?;
    let written = central
        .writer()
        .write(WriteOp::PasswordRotated {
            id: id.clone(),
            password_hash,
        })
        .await?;
    if written == WriteResult::Affected(0) {
        return Err(ApiError::not_found(format!("no pile {id:?}")));
    }
    let request = |value: &str| {
        ocpp::encode(&ChangeConfigurationRequest {
            key: CiString50::truncating(AUTHORIZATION_KEY),
            value: CiString500::truncating(value),
        })
    };
    let outcome = command_log::call_recorded_as(
        &central,
        &id,
        Action::ChangeConfiguration,
        request(&key),
        request("***"),
    )
    .await;
    let both = ": it may have taken the new key, so the old and the new password are both \
        valid until it connects with the new one";
    // The pile's answer when it took the key; else the answer to give once both are valid, or
    // (it did not take the key) once the old one is the password again.
    let taken = match outcome {
        Ok(Ok(answer)) => match answer.value {
            Response::ChangeConfiguration(r) => match r.status.as_str() {
                s @ ("Accepted" | "RebootRequired") => Ok(s.to_owned()),
                other => Err(ApiError::conflict(format!(
                    "the pile answered {other}{stays}"
                ))),
            },
            _ => Err(ApiError(
                StatusCode::BAD_GATEWAY,
                format!("the pile answered with another action{stays}"),
            )),
        },
        Ok(Err(e @ (DeliveryError::NotConnected | DeliveryError::CallError(_)))) => {
            Err(ApiError::conflict(format!("{e}{stays}")))
        }
        Ok(Err(e @ DeliveryError::Unavailable(_))) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}{stays}"),
        )),
        Ok(Err(e @ DeliveryError::Timeout)) => {
            Err(ApiError(StatusCode::GATEWAY_TIMEOUT, format!("{e}{both}")))
        }
        Ok(Err(e @ (DeliveryError::Disconnected | DeliveryError::BadResponse(_)))) => {
            Err(ApiError(StatusCode::BAD_GATEWAY, format!("{e}{both}")))
        }
        Err(e) => Err(e.into()),
    };
    if let Err(ApiError(_, why)) = &taken {
        if why.ends_with(stays) {
            central
                .writer()
                .write(WriteOp::PasswordRotationUndone { id: id.clone() })
                .await?;
            return Err(taken.unwrap_err());
        }
    }
    let detail = match &taken {
        Ok(status) => format!(
            "the pile answered {status}: the new AuthorizationKey is its password, the former \
             one valid until it connects with it"
        ),
        Err(ApiError(_, why)) => why.clone(),
    };
    event(&central, &id, "PasswordRotated", detail).await?;
    let status = taken?;
    Ok(Json(Rotated {
        status,
        pile: view_of(&central, &id).await?,
    }))
}
