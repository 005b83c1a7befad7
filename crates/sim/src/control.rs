//! The local control port: a small HTTP JSON API for what a person does at the pile.
//!
//! | request | effect |
//! |---|---|
//! | `GET /state` | connectors, statuses, configuration, connection, network, firmware |
//! | `POST /connectors/{n}/plug`, `POST /connectors/{n}/unplug` | a plug goes in or out |
//! | `POST /faults` `{"faults": ["relay_sticking", ...]}` | the faults become active |
//! | `DELETE /faults` | every fault clears |
//! | `POST /network` `{"connectivity": "4G", "online": true, ...}` | the network changes |
//! | `POST /config` `{"key": ..., "value": ...}` | sets a key at the pile (local provisioning) |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pile::shell::{PileHandle, PileState};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::{NetworkUpdate, SimError, SimHandle};

#[derive(Clone)]
struct Port {
    pile: PileHandle,
    sim: SimHandle,
}

type Reply = (StatusCode, Json<Value>);

fn refused(e: SimError) -> Reply {
    let status = match e {
        SimError::NoConnector(_) => StatusCode::NOT_FOUND,
        SimError::UnknownFault(_) => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({ "error": e.to_string() })))
}

async fn state(State(port): State<Port>) -> Result<Json<PileState>, Reply> {
    match port.pile.state().await {
        Some(state) => Ok(Json(state)),
        None => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the pile is not running" })),
        )),
    }
}

async fn plug(State(port): State<Port>, Path(n): Path<u32>) -> Reply {
    match port.sim.plug(n, true) {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "connector": n, "plugged": true })),
        ),
        Err(e) => refused(e),
    }
}

async fn unplug(State(port): State<Port>, Path(n): Path<u32>) -> Reply {
    match port.sim.plug(n, false) {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "connector": n, "plugged": false })),
        ),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    faults: Vec<String>,
}

async fn add_faults(State(port): State<Port>, Json(body): Json<Faults>) -> Reply {
    match port.sim.add_faults(&body.faults) {
        Ok(active) => (StatusCode::OK, Json(json!({ "faults": active }))),
        Err(e) => refused(e),
    }
}

async fn clear_faults(State(port): State<Port>) -> Reply {
    port.sim.clear_faults();
    (StatusCode::OK, Json(json!({ "faults": [] })))
}

async fn network(State(port): State<Port>, Json(update): Json<NetworkUpdate>) -> Reply {
    port.sim.update_network(update);
    (StatusCode::OK, Json(json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigChange {
    key: String,
    value: String,
}

async fn config(State(port): State<Port>, Json(body): Json<ConfigChange>) -> Reply {
    match port.pile.provision(&body.key, &body.value).await {
        Some(status) => (
            StatusCode::OK,
            Json(json!({ "status": status.to_string() })),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the pile is not running" })),
        ),
    }
}

pub fn router(pile: PileHandle, sim: SimHandle) -> Router {
    Router::new()
        .route("/state", get(state))
        .route("/connectors/{n}/plug", post(plug))
        .route("/connectors/{n}/unplug", post(unplug))
        .route("/faults", post(add_faults).delete(clear_faults))
        .route("/network", post(network))
        .route("/config", post(config))
        .with_state(Port { pile, sim })
}

/// Serves the control port until the task is dropped.
pub async fn serve(listener: TcpListener, pile: PileHandle, sim: SimHandle) -> std::io::Result<()> {
    axum::serve(listener, router(pile, sim)).await
}
