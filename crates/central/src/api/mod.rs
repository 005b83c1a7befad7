//! The REST API (`/api`, bearer token), `/metrics`, and the route of the OCPP websockets.

mod campaigns;
pub(crate) mod commands;
mod doc;
pub mod fleet;
mod piles;
mod records;
pub(crate) mod schema;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::Serialize;

use crate::store::{Millis, StoreError};
use crate::Central;

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

async fn require_token(State(central): State<Arc<Central>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if transport::auth::constant_time_eq(t.as_bytes(), central.token.as_bytes()) => {
            next.run(req).await
        }
        _ => {
            let mut resp = ApiError(
                StatusCode::UNAUTHORIZED,
                "a valid `Authorization: Bearer <token>` header is required".into(),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

/// axum's own refusals (a path or query parameter that does not parse, a body over its limit,
/// a method the path does not take) are plain text: they become `{"error": "..."}` like ours.
async fn errors_as_json(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !resp.status().is_client_error() || json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let reason = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(text) if !text.trim_ascii().is_empty() => {
            String::from_utf8_lossy(text.trim_ascii()).into_owned()
        }
        _ => parts
            .status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase(),
    };
    let mut answer = ApiError(parts.status, reason).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// Prometheus metrics (no token)
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "system",
    security(()),
    responses((status = 200, description = "the OpenMetrics text format",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String)))]
pub async fn metrics(State(central): State<Arc<Central>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        central.metrics.encode(),
    )
        .into_response()
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such path")
}

/// The routes under `/api` (the token required), as the router is built from them.
fn api_routes() -> Vec<(&'static str, MethodRouter<Arc<Central>>)> {
    vec![
        ("/piles", get(fleet::list).post(piles::register)),
        ("/fleet", get(fleet::overview)),
        ("/piles/{id}", get(piles::show).delete(piles::delete)),
        ("/piles/{id}/approve", post(piles::approve)),
        ("/piles/{id}/reject", post(piles::reject)),
        ("/piles/{id}/configuration", get(piles::configuration)),
        (
            "/piles/{id}/configuration/history",
            get(piles::configuration_history),
        ),
        (
            "/piles/{id}/configuration/read",
            post(piles::read_configuration),
        ),
        (
            "/piles/{id}/vendor",
            get(piles::vendor).patch(piles::patch_vendor),
        ),
        ("/piles/{id}/commands", get(commands::list)),
        ("/piles/{id}/commands/{action}", post(commands::send)),
        ("/piles/{id}/messages", get(records::messages)),
        ("/piles/{id}/deviations", get(records::deviations)),
        ("/piles/{id}/events", get(records::events)),
        ("/piles/{id}/status-history", get(records::status_history)),
        ("/transactions", get(records::transactions)),
        ("/transactions/{id}", get(records::transaction)),
        (
            "/transactions/{id}/meter-values",
            get(records::meter_values),
        ),
        ("/id-tags", get(records::id_tags).post(records::post_id_tag)),
        (
            "/id-tags/{tag}",
            get(records::id_tag)
                .put(records::put_id_tag)
                .delete(records::delete_id_tag),
        ),
        ("/handshakes/refused", get(records::refused)),
        (
            "/firmware",
            get(campaigns::images).post(campaigns::upload).layer(
                axum::extract::DefaultBodyLimit::max(crate::firmware::MAX_IMAGE),
            ),
        ),
        ("/campaigns", get(campaigns::list).post(campaigns::create)),
        ("/campaigns/{id}", get(campaigns::show)),
        ("/campaigns/{id}/cancel", post(campaigns::cancel)),
        ("/openapi.json", get(doc::openapi)),
    ]
}

/// The routes outside `/api` that the API document lists (no token: piles and Prometheus
/// have none).
fn open_routes() -> Vec<(&'static str, MethodRouter<Arc<Central>>)> {
    vec![
        ("/metrics", get(metrics)),
        ("/firmware/{id}/{name}", get(crate::firmware::serve)),
    ]
}

/// Every route of the central system.
pub fn router(central: Arc<Central>) -> Router {
    let api = api_routes()
        .into_iter()
        .fold(Router::new(), |r, (path, route)| r.route(path, route))
        .fallback(no_route)
        .layer(axum::middleware::from_fn(errors_as_json))
        .layer(axum::middleware::from_fn_with_state(
            central.clone(),
            require_token,
        ));
    open_routes()
        .into_iter()
        .fold(Router::new().nest("/api", api), |r, (path, route)| {
            r.route(path, route)
        })
        .route("/ocpp", get(crate::server::ocpp_upgrade))
        .route("/ocpp/", get(crate::server::ocpp_upgrade))
        .route("/ocpp/{*rest}", get(crate::server::ocpp_upgrade))
        .with_state(central)
}
