//! The REST API (`/api`, bearer token), `/metrics`, and the route of the OCPP websockets.

mod campaigns;
pub(crate) mod commands;
pub mod fleet;
mod piles;
mod records;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::store::{Millis, StoreError};
use crate::Central;

/// An API error: an HTTP status and the reason, as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

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
        (self.0, Json(json!({ "error": self.1 }))).into_response()
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

async fn metrics(State(central): State<Arc<Central>>) -> Response {
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

/// Every route of the central system.
pub fn router(central: Arc<Central>) -> Router {
    let api = Router::new()
        .route("/piles", get(fleet::list).post(piles::register))
        .route("/fleet", get(fleet::overview))
        .route("/piles/{id}", get(piles::show).delete(piles::delete))
        .route("/piles/{id}/approve", post(piles::approve))
        .route("/piles/{id}/reject", post(piles::reject))
        .route("/piles/{id}/configuration", get(piles::configuration))
        .route(
            "/piles/{id}/configuration/history",
            get(piles::configuration_history),
        )
        .route(
            "/piles/{id}/configuration/read",
            post(piles::read_configuration),
        )
        .route(
            "/piles/{id}/vendor",
            get(piles::vendor).patch(piles::patch_vendor),
        )
        .route("/piles/{id}/commands", get(commands::list))
        .route("/piles/{id}/commands/{action}", post(commands::send))
        .route("/piles/{id}/messages", get(records::messages))
        .route("/piles/{id}/deviations", get(records::deviations))
        .route("/piles/{id}/events", get(records::events))
        .route("/piles/{id}/status-history", get(records::status_history))
        .route("/transactions", get(records::transactions))
        .route("/transactions/{id}", get(records::transaction))
        .route(
            "/transactions/{id}/meter-values",
            get(records::meter_values),
        )
        .route("/id-tags", get(records::id_tags).post(records::post_id_tag))
        .route(
            "/id-tags/{tag}",
            get(records::id_tag)
                .put(records::put_id_tag)
                .delete(records::delete_id_tag),
        )
        .route("/handshakes/refused", get(records::refused))
        .route(
            "/firmware",
            get(campaigns::images).post(campaigns::upload).layer(
                axum::extract::DefaultBodyLimit::max(crate::firmware::MAX_IMAGE),
            ),
        )
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::show))
        .route("/campaigns/{id}/cancel", post(campaigns::cancel))
        .route("/openapi.json", get(records::openapi))
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            central.clone(),
            require_token,
        ));
    Router::new()
        .nest("/api", api)
        .route("/metrics", get(metrics))
        .route("/firmware/{id}/{name}", get(crate::firmware::serve))
        .route("/ocpp", get(crate::server::ocpp_upgrade))
        .route("/ocpp/", get(crate::server::ocpp_upgrade))
        .route("/ocpp/{*rest}", get(crate::server::ocpp_upgrade))
        .with_state(central)
}

#[cfg(test)]
mod tests {
    /// Every route of the API is in the OpenAPI document, and nothing else.
    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
        let documented: std::collections::BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        let source = include_str!("mod.rs");
        let router = &source[..source.find("mod tests").unwrap()];
        // Routes before `.nest("/api", api)` are the API's; those after it are top-level.
        let top = router.find(".nest(\"/api\"").unwrap();
        let mut routes = std::collections::BTreeSet::new();
        for (i, _) in router.match_indices(".route(") {
            let rest = router[i + ".route(".len()..].trim_start();
            let path = rest.strip_prefix('"').unwrap().split('"').next().unwrap();
            if path.starts_with("/ocpp") {
                continue;
            }
            let full = if i > top {
                path.to_owned()
            } else {
                format!("/api{path}")
            };
            routes.insert(full);
        }
        assert_eq!(routes, documented);
    }
}
