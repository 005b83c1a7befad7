//! The firmware signer of signed campaigns: its manufacturer root (for InstallCertificate
//! ManufacturerRootCertificate), and the operator's signing identity in place of the demo one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::campaigns::signer_failed;
use super::{json_body, ApiError, ApiResult, ErrorBody};
use crate::campaign::signer::{self, Signer, SignerError};
use crate::Central;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The firmware signer, or a 404 saying how to set one.
async fn current(central: &Central) -> ApiResult<Signer> {
    signer::load(central.repo().as_ref())
        .await
        .map_err(signer_failed)?
        .ok_or_else(|| {
            ApiError::not_found(
                "no firmware signer: POST /api/security/firmware-signer (the operator's) or \
                 /api/security/firmware-signer/demo",
            )
        })
}

/// The firmware signer's manufacturer root certificate
///
/// What a pile is given with InstallCertificate ManufacturerRootCertificate, so that it
/// verifies the signing certificate of SignedUpdateFirmware.
#[utoipa::path(get, path = "/api/security/firmware-root", operation_id = "firmware_root", tag = "security",
    responses(
        (status = 200, description = "the manufacturer root, PEM", content_type = "application/x-pem-file", body = String),
        (status = 404, description = "no firmware signer is set", body = ErrorBody),
        (status = 503, description = "the store failed", body = ErrorBody)))]
pub async fn root(State(central): State<Arc<Central>>) -> ApiResult<Response> {
    let signer = current(&central).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        signer.root_pem().to_owned(),
    )
        .into_response())
}

/// The firmware signer: its certificates (never its key).
#[derive(Serialize, ToSchema)]
#[schema(as = FirmwareSigner)]
pub struct SignerView {
    /// The manufacturer root, PEM.
    root: String,
    /// The signing certificate SignedUpdateFirmware carries, PEM.
    certificate: String,
}

fn view(signer: &Signer) -> SignerView {
    SignerView {
        root: signer.root_pem().to_owned(),
        certificate: signer.certificate_pem().to_owned(),
    }
}

/// The firmware signer
#[utoipa::path(get, path = "/api/security/firmware-signer", operation_id = "firmware_signer", tag = "security",
    responses(
        (status = 200, description = "the signer's certificates", body = SignerView),
        (status = 404, description = "no firmware signer is set", body = ErrorBody),
        (status = 503, description = "the store failed", body = ErrorBody)))]
pub async fn show(State(central): State<Arc<Central>>) -> ApiResult<Json<SignerView>> {
    Ok(Json(view(&current(&central).await?)))
}

/// Sets a demo firmware signer
///
/// Generates a manufacturer root and a signing certificate it issued (ECDSA P-256, valid for
/// twenty years), for demonstrations and tests, in place of any signer set.
#[utoipa::path(post, path = "/api/security/firmware-signer/demo", operation_id = "demo_firmware_signer", tag = "security",
    responses(
        (status = 200, description = "generated and kept", body = SignerView),
        (status = 503, description = "the store failed", body = ErrorBody)))]
pub async fn demo(State(central): State<Arc<Central>>) -> ApiResult<Json<SignerView>> {
    let signer = signer::replace_with_demo(central.repo().as_ref(), now_ms())
        .await
        .map_err(signer_failed)?;
    Ok(Json(view(&signer)))
}

/// A firmware signing identity.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSigner {
    /// The manufacturer root certificate, PEM.
    root: String,
    /// The signing certificate, issued by the root, PEM (at most 5,500 characters).
    certificate: String,
    /// The signing certificate's private key, PKCS#8 PEM: ECDSA P-256 or RSA.
    key: String,
}

/// Sets the firmware signer
///
/// The images of signed campaigns created from now on are signed with this key (SHA-256 with
/// ECDSA or RSA PKCS#1 v1.5); it is kept in the database, so every node signs with it.
#[utoipa::path(post, path = "/api/security/firmware-signer", operation_id = "set_firmware_signer", tag = "security",
    request_body = NewSigner,
    responses(
        (status = 200, description = "kept", body = SignerView),
        (status = 400, description = "not PEM, the certificate not issued by the root, the key not the certificate's or of another kind; the reason is in `error`", body = ErrorBody),
        (status = 503, description = "the store failed", body = ErrorBody)))]
pub async fn set(State(central): State<Arc<Central>>, body: Bytes) -> ApiResult<Json<SignerView>> {
    let req: NewSigner = json_body(&body)?;
    let signer = signer::replace(
        central.repo().as_ref(),
        &req.root,
        &req.certificate,
        &req.key,
    )
    .await
    .map_err(|e| match e {
        SignerError::Invalid(why) => ApiError::bad_request(why),
        other => signer_failed(other),
    })?;
    Ok(Json(view(&signer)))
}
