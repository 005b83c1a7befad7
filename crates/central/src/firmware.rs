//! Firmware images: stored in the database (their bytes in chunks of 1 MiB, so that every node
//! serves every image), and served to the piles over plain HTTP at `/firmware/{id}/{name}`
//! (FAQ 3.17 point 2: every firmware version downloads over http), read chunk by chunk. The
//! file name is the last segment of the URL, so a pile that names its firmware after the image
//! (as ours does) reports it as its version.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::store::{ImageRow, Repository, StoreError};
use crate::web::{time, ApiError, ApiResult};
use crate::Central;

/// The largest image accepted.
pub const MAX_IMAGE: usize = 256 * 1024 * 1024;
/// The longest image name.
pub const MAX_NAME: usize = 200;

/// Where an older version kept the images' bytes, each file named by its SHA-256.
fn older_dir(data_dir: &FsPath) -> PathBuf {
    data_dir.join("firmware")
}

/// Checks an image's file name: it becomes a URL segment and a file the pile names.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("`name` is required: the image's file name".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("the name is longer than {MAX_NAME} bytes"));
    }
    if name == "." || name == ".." || name.contains(['/', '\\']) {
        return Err(format!("{name:?} is no file name"));
    }
    if name.chars().any(char::is_control) {
        return Err("the name holds control characters".into());
    }
    Ok(())
}

/// The URL piles download an image from.
pub fn url(central: &Central, image: &ImageRow) -> String {
    let name = ocpp::identity::encode_segment(&image.name);
    format!(
        "{}/firmware/{}/{}",
        central.public_url().trim_end_matches('/'),
        image.id,
        name
    )
}

/// A firmware image the central serves.
#[derive(Serialize, ToSchema)]
#[schema(as = Firmware)]
pub struct ImageView {
    id: i64,
    /// Its file name: the last segment of its URL.
    name: String,
    /// The firmware type: esp32 for a name ending in .ws.cp, st and three digits for a name
    /// ending in .NNN (.070: st070), else the last extension, or any.
    target: String,
    /// The model it is built for; null: any.
    model: Option<String>,
    /// The version a pile reports once it runs it.
    version: Option<String>,
    /// Where piles download it (served by this central system).
    url: String,
    /// Uploaded with the manufacturer's signature: SignedUpdateFirmware carries it and its
    /// signing certificate; else a signed campaign has the central's firmware signer sign it.
    signed: bool,
    /// Bytes.
    size: i64,
    sha256: String,
    #[schema(format = DateTime)]
    created_at: String,
}

pub fn image_view(central: &Central, image: &ImageRow) -> ImageView {
    ImageView {
        id: image.id,
        name: image.name.clone(),
        target: image.target.clone(),
        model: image.model.clone(),
        version: image.version.clone(),
        url: url(central, image),
        signed: image.signature.is_some(),
        size: image.size,
        sha256: image.sha256.clone(),
        created_at: time(image.created_at),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What describes an image besides its bytes.
pub struct NewImage {
    pub name: String,
    pub target: Option<String>,
    pub version: Option<String>,
    pub model: Option<String>,
}

/// Stores an image: its row and its bytes in one database transaction.
pub async fn store(central: &Central, new: NewImage, body: Bytes) -> ApiResult<ImageRow> {
    validate_name(&new.name).map_err(ApiError::bad_request)?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the image (the request body) is empty",
        ));
    }
    let clean = |s: Option<String>| s.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let target = clean(new.target).unwrap_or_else(|| oem::firmware::target_from_name(&new.name));
    let version = clean(new.version);
    if version.as_ref().is_some_and(|v| v.chars().count() > 50) {
        return Err(ApiError::bad_request(
            "`version` is longer than 50 characters (BootNotification's firmwareVersion)",
        ));
    }
    let model = clean(new.model).or_else(|| oem::firmware::model_from_name(&new.name));
    let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, &body).as_ref());
    let mut row = ImageRow {
        id: 0,
        name: new.name,
        target,
        model,
        version,
        size: body.len() as i64,
        sha256,
        created_at: chrono::Utc::now().timestamp_millis(),
        signature: None,
        signing_certificate: None,
    };
    row.id = central.repo().put_image(&row, &body).await?;
    Ok(row)
}

/// An image's bytes, read chunk by chunk (none: the database holds none of them).
pub async fn bytes(repo: &dyn Repository, image: &ImageRow) -> Result<Option<Vec<u8>>, StoreError> {
    let mut out = Vec::with_capacity(usize::try_from(image.size).unwrap_or(0));
    let mut n = 0;
    while let Some(chunk) = repo.image_chunk(image.id, n).await? {
        out.extend_from_slice(&chunk);
        n += 1;
    }
    Ok((n > 0).then_some(out))
}

/// Keeps the manufacturer's signature of an image, once it verifies over the image's bytes
/// with the signing certificate's key ([`crate::campaign::signer::verify`]): the image as it
/// is now; a 404 when there is no such image, a 400 with the reason when it does not verify.
pub async fn set_signature(
    central: &Central,
    id: i64,
    signature: &str,
    signing_certificate: &str,
) -> ApiResult<ImageRow> {
    let missing = || ApiError::not_found(format!("there is no firmware image {id}"));
    let image = central.repo().image(id).await?.ok_or_else(missing)?;
    let bytes = bytes(central.repo().as_ref(), &image)
        .await?
        .ok_or_else(|| ApiError::bad_request("the database holds none of the image's bytes"))?;
    let (signature, cert) = (signature.trim(), signing_certificate.trim());
    crate::campaign::signer::verify(cert, &bytes, signature).map_err(ApiError::bad_request)?;
    if !central
        .repo()
        .set_image_signature(id, signature, cert)
        .await?
    {
        return Err(missing());
    }
    central.repo().image(id).await?.ok_or_else(missing)
}

/// What SignedUpdateFirmware carries of a signed campaign's image: the manufacturer's
/// signature it was uploaded with, else the image's bytes signed by the central's firmware
/// signer (`signer`, loaded once by the caller); a 400 when there is neither, or the database
/// holds none of its bytes.
pub async fn signature(
    central: &Central,
    signer: Option<&crate::campaign::signer::Signer>,
    image: &ImageRow,
) -> ApiResult<crate::campaign::ImageSignature> {
    if let (Some(signature), Some(cert)) = (&image.signature, &image.signing_certificate) {
        return Ok(crate::campaign::ImageSignature {
            signing_certificate: cert.clone(),
            signature: signature.clone(),
        });
    }
    let Some(signer) = signer else {
        return Err(ApiError::bad_request(format!(
            "firmware image {} ({}) was uploaded without a signature and no firmware signer is \
             set (POST /api/security/firmware-signer): a signed campaign cannot sign it",
            image.id, image.name
        )));
    };
    let bytes = bytes(central.repo().as_ref(), image)
        .await?
        .ok_or_else(|| {
            ApiError::bad_request(format!(
            "firmware image {} ({}): the database holds none of its bytes, so it cannot be signed",
            image.id, image.name
        ))
        })?;
    let signature = signer
        .sign(&bytes)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(crate::campaign::ImageSignature {
        signing_certificate: signer.certificate_pem().to_owned(),
        signature,
    })
}

/// Imports the bytes of the images an older version kept in the data directory (once: an
/// image whose bytes the database holds is left alone); the files are left where they are.
/// An image whose file is missing or altered is reported and left without bytes (its
/// downloads answer 404).
pub async fn import_older(repo: &dyn Repository, data_dir: &FsPath) -> Result<(), StoreError> {
    for image in repo.images_without_bytes().await? {
        let path = older_dir(data_dir).join(&image.sha256);
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::error!(
                    "firmware image {} ({}): no bytes in the database and {}: {e}",
                    image.id,
                    image.name,
                    path.display()
                );
                continue;
            }
        };
        let sha256 = hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref());
        if sha256 != image.sha256 || bytes.len() as i64 != image.size {
            tracing::error!(
                "firmware image {} ({}): {} does not hold its bytes (SHA-256 {sha256}); not imported",
                image.id,
                image.name,
                path.display()
            );
            continue;
        }
        repo.import_image_bytes(image.id, &bytes).await?;
        tracing::info!(
            "firmware image {} ({}): its {} bytes imported from {} into the database",
            image.id,
            image.name,
            bytes.len(),
            path.display()
        );
    }
    Ok(())
}

/// A firmware image, for the piles (no token)
///
/// A pile's HTTP client has no token; the id and the name must both match.
#[utoipa::path(get, path = "/firmware/{id}/{name}", operation_id = "download_firmware", tag = "firmware",
    security(()),
    params(("id" = i64, Path, description = "the image's id"),
        ("name" = String, Path, description = "the image's name")),
    responses(
        (status = 200, description = "the image", content_type = "application/octet-stream", body = Binary),
        (status = 400, description = "the id is not a number", content_type = "text/plain", body = String),
        (status = 404, description = "no such image", content_type = "text/plain", body = String)))]
pub async fn serve(
    State(central): State<Arc<Central>>,
    Path((id, name)): Path<(i64, String)>,
) -> Response {
    let missing = || (StatusCode::NOT_FOUND, "no such firmware image\n").into_response();
    let image = match central.repo().image(id).await {
        Ok(Some(image)) if image.name == name => image,
        Ok(_) => return missing(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    // The first chunk before the answer: an image without bytes is missing, not cut short.
    let first = match central.repo().image_chunk(id, 0).await {
        Ok(Some(first)) => first,
        Ok(None) => {
            tracing::error!("firmware image {id}: the database holds none of its bytes");
            return missing();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    central.metrics().firmware_downloads.inc();
    let repo = central.repo().clone();
    let rest = futures_util::stream::unfold(Some(1), move |next| {
        let repo = repo.clone();
        async move {
            let n = next?;
            match repo.image_chunk(id, n).await {
                Ok(Some(chunk)) => Some((Ok(Bytes::from(chunk)), Some(n + 1))),
                Ok(None) => None,
                Err(e) => {
                    tracing::error!("firmware image {id}, chunk {n}: {e}");
                    Some((Err(std::io::Error::other(e)), None))
                }
            }
        }
    });
    let first = futures_util::stream::once(async move { Ok(Bytes::from(first)) });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, image.size.to_string()),
        ],
        Body::from_stream(futures_util::StreamExt::chain(first, rest)),
    )
        .into_response()
}

/// A firmware image's bytes as they are: only named in the document, never built.
#[allow(dead_code)]
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
                .build(),
        )
        .into()
    }
}

impl ToSchema for Binary {}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::validate_name("XSmart.V2.0.110(M3G31H)@7KW.EVPro.070").is_ok());
        assert!(super::validate_name("").is_err());
        assert!(super::validate_name("..").is_err());
        assert!(super::validate_name("a/b").is_err());
        assert!(super::validate_name("a\nb").is_err());
        assert!(super::validate_name(&"x".repeat(201)).is_err());
    }
}
