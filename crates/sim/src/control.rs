//! The local control port: a small HTTP JSON API for what a person does at the pile.
//!
//! | request | effect |
//! |---|---|
//! | `GET /state` | connectors, statuses, transactions, configuration, connection, network, firmware, and the simulated `hardware` |
//! | `POST /connectors/{n}/plug` (optional body: an [`Ev`]), `POST /connectors/{n}/unplug` | an EV's plug goes in or out |
//! | `POST /card` `{"idTag": "...", "connector": n}` | a card at the reader (`connector` optional) |
//! | `POST /connectors/{n}/temperature` `{"celsius": 75}` | the connector's temperature sensors read this |
//! | `POST /faults` `{"faults": ["relay_sticking", ...]}` | the faults become active |
//! | `DELETE /faults` | every fault clears |
//! | `POST /network` `{"connectivity": "4G", "online": true, ...}` | the network changes |
//! | `POST /config` `{"key": ..., "value": ...}` | sets a key at the pile (local provisioning) |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pile::shell::{PileHandle, PileState};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::{Ev, NetworkUpdate, SimError, SimHandle};

#[derive(Clone)]
struct Port {
    pile: PileHandle,
    sim: SimHandle,
}

type Reply = (StatusCode, Json<Value>);

fn refused(e: SimError) -> Reply {
    let status = match e {
        SimError::NoConnector(_) => StatusCode::NOT_FOUND,
        SimError::UnknownFault(_) | SimError::BadIdTag => StatusCode::BAD_REQUEST,
    };
    (status, Json(json!({ "error": e.to_string() })))
}

async fn state(State(port): State<Port>) -> Result<Json<Value>, Reply> {
    match port.pile.state().await {
        Some(state) => {
            let mut value = serde_json::to_value::<PileState>(state).unwrap_or_default();
            value["hardware"] = serde_json::to_value(port.sim.hardware_state()).unwrap_or_default();
            Ok(Json(value))
        }
        None => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "the pile is not running" })),
        )),
    }
}

async fn plug(State(port): State<Port>, Path(n): Path<u32>, body: Bytes) -> Reply {
    let ev = if body.iter().all(u8::is_ascii_whitespace) {
        Ev::default()
    } else {
        match serde_json::from_slice::<Ev>(&body) {
            Ok(ev) => ev,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": format!("not an EV: {e}") })),
                )
            }
        }
    };
    match port.sim.plug_ev(n, ev) {
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
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Card {
    id_tag: String,
    #[serde(default)]
    connector: Option<u32>,
}

async fn card(State(port): State<Port>, Json(body): Json<Card>) -> Reply {
    match port.sim.card(body.connector, &body.id_tag) {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "idTag": body.id_tag, "connector": body.connector })),
        ),
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Temperature {
    celsius: f64,
}

async fn temperature(
    State(port): State<Port>,
    Path(n): Path<u32>,
    Json(body): Json<Temperature>,
) -> Reply {
    match port.sim.set_temperature(n, body.celsius) {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "connector": n, "celsius": body.celsius })),
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
        .route("/connectors/{n}/temperature", post(temperature))
        .route("/card", post(card))
        .route("/faults", post(add_faults).delete(clear_faults))
        .route("/network", post(network))
        .route("/config", post(config))
        .with_state(Port { pile, sim })
}

/// Serves the control port until the task is dropped.
pub async fn serve(listener: TcpListener, pile: PileHandle, sim: SimHandle) -> std::io::Result<()> {
    axum::serve(listener, router(pile, sim)).await
}
