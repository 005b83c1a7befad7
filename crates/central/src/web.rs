//! What every HTTP answer of the central system shares: the error (`{"error": "..."}`) and
//! times as RFC 3339 UTC with milliseconds.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::store::{Millis, StoreError};

/// An API error: an HTTP status and the reason, as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

/// What an error answers: why the request failed.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: String,
}

impl ApiError {
    pub fn bad_request(why: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, why.into())
    }
    pub fn not_found(why: impl Into<String>) -> Self {
        ApiError(StatusCode::NOT_FOUND, why.into())
    }
    pub fn conflict(why: impl Into<String>) -> Self {
        ApiError(StatusCode::CONFLICT, why.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!("store: {e}");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store failed: {e}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// An RFC 3339 UTC time with milliseconds.
pub fn time(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub fn time_opt(ms: Option<Millis>) -> Option<String> {
    ms.map(time)
}

/// Reads a JSON body, answering 400 with serde's reason when it does not fit.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}
