//! The REST API (`/api`, bearer token), `/metrics` and `/health`.

mod campaigns;
pub(crate) mod commands;
pub(crate) mod doc;
pub mod fleet;
mod nodes;
mod pile_security;
mod piles;
mod records;
pub(crate) mod schema;
mod security;
mod signer;
mod sites;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::Router;

pub use crate::web::{json_body, time, time_opt, ApiError, ApiResult, ErrorBody};
use crate::Central;

async fn require_token(State(central): State<Arc<Central>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if central.accepts_token(t) => next.run(req).await,
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
    match sites::figures(&central).await {
        Ok(figures) => central.metrics().set_sites(&figures),
        Err(e) => tracing::warn!("metrics: the sites' figures: {}", e.1),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        central.metrics().encode(),
    )
        .into_response()
}

async fn no_route() -> ApiError {
    ApiError::not_found("no such path")
}

/// The routes under `/api` (the token required), as the router is built from them.
pub(crate) fn api_routes() -> Vec<(&'static str, MethodRouter<Arc<Central>>)> {
    vec![
        ("/piles", get(fleet::list).post(piles::register)),
        ("/fleet", get(fleet::overview)),
        ("/nodes", get(nodes::list)),
        (
            "/piles/{id}",
            get(piles::show)
                .patch(pile_security::change)
                .delete(piles::delete),
        ),
        ("/piles/{id}/password/rotate", post(pile_security::rotate)),
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
        ("/piles/{id}/security-events", get(security::pile_events)),
        ("/piles/{id}/certificates", get(security::certificates)),
        ("/piles/{id}/certificate/renew", post(security::renew)),
        ("/security-events", get(security::events)),
        ("/security/ca", get(security::ca)),
        ("/security/firmware-root", get(signer::root)),
        (
            "/security/firmware-signer",
            get(signer::show).post(signer::set),
        ),
        ("/security/firmware-signer/demo", post(signer::demo)),
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
        ("/firmware/{id}/signature", post(campaigns::sign)),
        ("/campaigns", get(campaigns::list).post(campaigns::create)),
        ("/campaigns/{id}", get(campaigns::show)),
        ("/campaigns/{id}/cancel", post(campaigns::cancel)),
        ("/sites", get(sites::list).post(sites::create)),
        (
            "/sites/{id}",
            get(sites::show).patch(sites::change).delete(sites::delete),
        ),
        (
            "/sites/{id}/piles/{pile}",
            put(sites::add_pile).delete(sites::remove_pile),
        ),
        ("/sites/{id}/allocations", get(sites::allocations)),
        ("/openapi.json", get(doc::openapi)),
    ]
}

/// The routes outside `/api` that the API document lists (no token: piles and Prometheus
/// have none).
pub(crate) fn open_routes() -> Vec<(&'static str, MethodRouter<Arc<Central>>)> {
    vec![
        ("/metrics", get(metrics)),
        ("/health", get(crate::health::health)),
        ("/firmware/{id}/{name}", get(crate::firmware::serve)),
    ]
}

/// The API under `/api`, `/metrics` and the firmware downloads (the server adds the OCPP
/// websockets and the dashboard).
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
        .with_state(central)
}
