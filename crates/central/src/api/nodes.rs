//! `GET /api/nodes`: the nodes of the central system heard from lately, with their piles.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{time, ApiResult};
use crate::Central;

/// A node of the central system.
#[derive(Serialize, ToSchema)]
#[schema(as = Node)]
pub struct NodeView {
    /// Its name (`--node`).
    name: String,
    /// Where it listens (`host:port`).
    address: String,
    #[schema(format = DateTime)]
    started_at: String,
    /// Its last heartbeat.
    #[schema(format = DateTime)]
    heard_at: String,
    /// The piles whose connection it holds.
    piles: i64,
    /// It is the node that answers this request.
    this: bool,
}

/// The nodes heard from within the node TTL, by name
#[utoipa::path(get, path = "/api/nodes", operation_id = "list_nodes", tag = "system",
    responses((status = 200, description = "the live nodes", body = [NodeView])))]
pub async fn list(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<NodeView>>> {
    let ttl = i64::try_from(central.options().node_ttl.as_millis()).unwrap_or(i64::MAX);
    let nodes = central.repo().nodes().await?;
    Ok(Json(
        nodes
            .into_iter()
            // Silent by the database's clock, as the nodes' heartbeats are written.
            .filter(|n| n.silent_ms <= ttl)
            .map(|n| NodeView {
                this: n.name == central.node(),
                address: n.address,
                started_at: time(n.started_at),
                heard_at: time(n.heard_at),
                piles: n.piles,
                name: n.name,
            })
            .collect(),
    ))
}
