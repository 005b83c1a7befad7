//! The fleet's control API: every pile's own control port under `/piles/{id}/...` (the same
//! requests as `ocpile pile --control`), and actions on the whole fleet.
//!
//! | request | effect |
//! |---|---|
//! | `GET /fleet` | the summary: piles, started, connected, accepted, booted, charging, frames, connections, failures, store commits |
//! | `ANY /piles/{id}/...` | that pile's control port (`GET /piles/{id}/state`, `POST /piles/{id}/connectors/1/plug`, ...) |
//! | `POST /fleet/plug-all` (optional body: an EV) | an EV into every free connector |
//! | `POST /fleet/unplug-all` | every EV leaves |
//! | `POST /fleet/faults` `{"faults": [...], "share": 0.1}` | the faults on that share of the piles (all when no share) |
//! | `DELETE /fleet/faults` | every fault on every pile clears |
//! | `POST /fleet/offline` `{"seconds": 30}` | every pile loses its network for that long |
//! | `POST /fleet/scenario` `{"scenario": "busy"}` | the scenario from now on (idle, daily, busy) |

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::Fleet;
use crate::{Ev, NetworkUpdate};

type Reply = (StatusCode, Json<Value>);

fn bad(why: impl std::fmt::Display) -> Reply {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": why.to_string() })),
    )
}

/// The fleet's summary.
pub fn summary(fleet: &Fleet) -> Value {
    let counts = fleet.telemetry.counts();
    let mut value = serde_json::to_value(counts).unwrap_or_default();
    value["piles"] = json!(fleet.piles().len());
    value["started"] = json!(fleet.started());
    value["store_commits"] = json!(fleet.store.stats().commits.load(Ordering::Relaxed));
    value["store_saves"] = json!(fleet.store.stats().saves.load(Ordering::Relaxed));
    value["scenario"] = json!(format!("{:?}", fleet.scenario()).to_lowercase());
    value["latency_buckets"] = json!(fleet.telemetry.latency.snapshot());
    value
}

async fn fleet_summary(State(fleet): State<Arc<Fleet>>) -> Json<Value> {
    Json(summary(&fleet))
}

async fn pile(
    State(fleet): State<Arc<Fleet>>,
    Path((id, _rest)): Path<(String, String)>,
    request: Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(pile) = fleet.pile(&id) else {
        let reply = (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": format!("no pile {id} in this fleet") })),
        );
        return reply.into_response();
    };
    // The pile's own port sees the path after /piles/{id}, and a request of its own: the
    // extensions stay behind (this router's path parameters among them, which the port's
    // `/connectors/{n}/...` would read as its own).
    let (parts, body) = request.into_parts();
    let prefix = format!("/piles/{id}");
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .strip_prefix(prefix.as_str())
        .unwrap_or("/")
        .to_owned();
    let mut forwarded = Request::new(body);
    *forwarded.method_mut() = parts.method;
    *forwarded.uri_mut() = path
        .parse::<Uri>()
        .unwrap_or_else(|_| Uri::from_static("/"));
    *forwarded.version_mut() = parts.version;
    *forwarded.headers_mut() = parts.headers;
    let router = crate::control::router(pile.handle.clone(), pile.sim.clone());
    match router.oneshot(forwarded).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

async fn plug_all(State(fleet): State<Arc<Fleet>>, body: Bytes) -> Reply {
    let ev = if body.iter().all(u8::is_ascii_whitespace) {
        Ev::default()
    } else {
        match serde_json::from_slice::<Ev>(&body) {
            Ok(ev) => ev,
            Err(e) => return bad(format!("not an EV: {e}")),
        }
    };
    let mut plugged = 0;
    for p in fleet.piles() {
        for c in 1..=fleet.spec.connectors {
            if p.sim.plug_ev(c, ev.clone()).is_ok() {
                plugged += 1;
            }
        }
    }
    (StatusCode::OK, Json(json!({ "connectors": plugged })))
}

async fn unplug_all(State(fleet): State<Arc<Fleet>>) -> Reply {
    for p in fleet.piles() {
        for c in 1..=fleet.spec.connectors {
            let _ = p.sim.unplug(c);
        }
    }
    (
        StatusCode::OK,
        Json(json!({ "piles": fleet.piles().len() })),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    faults: Vec<String>,
    share: Option<f64>,
}

async fn add_faults(State(fleet): State<Arc<Fleet>>, body: Bytes) -> Reply {
    let body: Faults = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    let share = body.share.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&share) {
        return bad("share is between 0 and 1");
    }
    let n = (fleet.piles().len() as f64 * share).round() as usize;
    let mut faulted = Vec::new();
    // Every k-th pile, so that the share is spread over the fleet.
    let step = fleet.piles().len().checked_div(n).unwrap_or(1);
    for p in fleet.piles().iter().step_by(step.max(1)).take(n) {
        if let Err(e) = p.sim.add_faults(&body.faults) {
            return bad(e);
        }
        faulted.push(p.id.clone());
    }
    (StatusCode::OK, Json(json!({ "piles": faulted })))
}

async fn clear_faults(State(fleet): State<Arc<Fleet>>) -> Reply {
    for p in fleet.piles() {
        p.sim.clear_faults();
    }
    (
        StatusCode::OK,
        Json(json!({ "piles": fleet.piles().len() })),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Offline {
    seconds: u64,
}

fn set_online(fleet: &Fleet, online: bool) {
    for p in fleet.piles() {
        p.sim.update_network(NetworkUpdate {
            online: Some(online),
            ..NetworkUpdate::default()
        });
    }
}

async fn offline(State(fleet): State<Arc<Fleet>>, body: Bytes) -> Reply {
    let body: Offline = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    set_online(&fleet, false);
    let back = fleet.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(body.seconds)).await;
        set_online(&back, true);
    });
    (
        StatusCode::OK,
        Json(json!({ "piles": fleet.piles().len(), "seconds": body.seconds })),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioChange {
    scenario: String,
}

async fn scenario(State(fleet): State<Arc<Fleet>>, body: Bytes) -> Reply {
    let body: ScenarioChange = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(e),
    };
    match body.scenario.parse() {
        Ok(s) => {
            fleet.set_scenario(s);
            (StatusCode::OK, Json(json!({ "scenario": body.scenario })))
        }
        Err(e) => bad(e),
    }
}

pub fn router(fleet: Arc<Fleet>) -> Router {
    Router::new()
        .route("/fleet", get(fleet_summary))
        .route("/fleet/plug-all", post(plug_all))
        .route("/fleet/unplug-all", post(unplug_all))
        .route("/fleet/faults", post(add_faults).delete(clear_faults))
        .route("/fleet/offline", post(offline))
        .route("/fleet/scenario", post(scenario))
        .route("/piles/{id}/{*rest}", any(pile))
        .with_state(fleet)
}

pub async fn serve(listener: TcpListener, fleet: Arc<Fleet>) -> std::io::Result<()> {
    axum::serve(listener, router(fleet)).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;

    use super::*;

    async fn ask(fleet: &Arc<Fleet>, method: &str, path: &str, body: &str) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = router(fleet.clone()).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A pile's own requests with a path parameter (the connector) go through the fleet's
    /// `/piles/{id}/...`: an EV plugged into one pile, with the current it draws at most.
    #[tokio::test]
    async fn a_piles_connector_is_reached_through_the_fleet() {
        let dir = std::env::temp_dir().join(format!("sim-fleet-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // No central listens there: the piles only try to connect.
        let fleet = Fleet::start(super::super::FleetSpec::new(
            2,
            "ws://127.0.0.1:9/ocpp/",
            &dir,
        ))
        .unwrap();
        let plug = "/piles/FLEET-00002/connectors/1/plug";
        let (code, body) = ask(&fleet, "POST", plug, r#"{"max_current": 16.0}"#).await;
        assert_eq!(
            (code, &body),
            (200, &json!({"connector": 1, "plugged": true}))
        );
        let (code, body) = ask(&fleet, "POST", "/piles/FLEET-00002/connectors/9/plug", "").await;
        assert_eq!(code, 404, "{body}");
        let outlets = |id: &str| {
            let fleet = fleet.clone();
            let path = format!("/piles/{id}/state");
            async move {
                let (code, state) = ask(&fleet, "GET", &path, "").await;
                assert_eq!(code, 200, "{state}");
                state["hardware"]["outlets"].clone()
            }
        };
        assert_eq!(outlets("FLEET-00002").await[0]["ev"]["max_current"], 16.0);
        assert!(outlets("FLEET-00001").await[0]["ev"].is_null());
        let (code, body) = ask(&fleet, "POST", "/piles/FLEET-00002/connectors/1/unplug", "").await;
        assert_eq!((code, body["plugged"].as_bool()), (200, Some(false)));
        assert!(outlets("FLEET-00002").await[0]["ev"].is_null());
        fleet.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
