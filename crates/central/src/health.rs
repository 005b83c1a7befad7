//! `GET /health`: whether this node takes piles. Ready when its database answers and, in a
//! cluster, its NATS connection is up; draining from the moment it begins to stop. A load
//! balancer's health check asks it every second or two, so the database is asked at most once
//! a second.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;

use crate::Central;

/// How long a database check stands for the next requests.
pub const DATABASE_CHECK_KEPT: Duration = Duration::from_secs(1);
/// A database that has not answered `SELECT 1` within this time is down.
pub const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the node tells of its health: whether it drains, and its last database check.
#[derive(Default)]
pub struct Health {
    draining: AtomicBool,
    /// The last database check: when it was made and whether the database answered. A lock
    /// that waits, so that requests arriving together make one check.
    database: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl Health {
    /// From now on the node answers `draining`.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Whether the database answered: the last check when it is younger than
    /// [`DATABASE_CHECK_KEPT`] at `now`, else `probe`'s answer (false when it takes longer
    /// than [`DATABASE_CHECK_TIMEOUT`]).
    pub async fn database_up<F>(&self, now: Instant, probe: impl FnOnce() -> F) -> bool
    where
        F: Future<Output = bool>,
    {
        let mut last = self.database.lock().await;
        if let Some((at, up)) = *last {
            if now.saturating_duration_since(at) < DATABASE_CHECK_KEPT {
                return up;
            }
        }
        let up = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, probe())
            .await
            .unwrap_or(false);
        *last = Some((now, up));
        up
    }
}

/// Whether the node takes piles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// Everything it needs answers.
    Ready,
    /// Something it needs is down (named beside).
    Unavailable,
    /// It is stopping: it takes no new connection and closes its piles' ones.
    Draining,
}

/// A part the node needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartState {
    Up,
    Down,
    /// A node alone uses no NATS.
    #[serde(rename = "not used")]
    NotUsed,
}

/// The node's health.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthBody {
    pub status: Readiness,
    /// Whether the database answered `SELECT 1` (checked at most once a second).
    pub database: PartState,
    /// Whether the node's NATS connection is up (`not used` by a node alone).
    pub nats: PartState,
    /// The node's name (`--node`).
    pub node: String,
}

impl HealthBody {
    /// The body of these parts' states; ready when none is down and the node does not drain.
    pub fn of(node: &str, draining: bool, database: PartState, nats: PartState) -> HealthBody {
        let status = if draining {
            Readiness::Draining
        } else if database == PartState::Down || nats == PartState::Down {
            Readiness::Unavailable
        } else {
            Readiness::Ready
        };
        HealthBody {
            status,
            database,
            nats,
            node: node.to_owned(),
        }
    }
}

/// The node's health now.
pub async fn check(central: &Central) -> HealthBody {
    let repo = central.repo().clone();
    let database = central
        .health()
        .database_up(Instant::now(), || async move { repo.ping().await.is_ok() })
        .await;
    let database = if database {
        PartState::Up
    } else {
        PartState::Down
    };
    let nats = match central.cluster() {
        None => PartState::NotUsed,
        Some(cluster) if cluster.is_connected() => PartState::Up,
        Some(_) => PartState::Down,
    };
    HealthBody::of(
        &central.options().node,
        central.health().is_draining(),
        database,
        nats,
    )
}

/// Whether this node takes piles (no token; for load balancers)
#[utoipa::path(get, path = "/health", operation_id = "health", tag = "system",
    security(()),
    responses(
        (status = 200, description = "ready: the database answers and, in a cluster, NATS is \
            connected", body = HealthBody),
        (status = 503, description = "draining (the node stops), or unavailable: the fields say \
            what is down", body = HealthBody)))]
pub async fn health(State(central): State<Arc<Central>>) -> Response {
    let body = check(&central).await;
    let status = if body.status == Readiness::Ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_database_check_stands_for_a_second() {
        let health = Health::default();
        let t0 = Instant::now();
        assert!(health.database_up(t0, || async { true }).await);
        // Within the second the last answer stands: the probe is not asked.
        let later = t0 + Duration::from_millis(900);
        assert!(health.database_up(later, || async { false }).await);
        // After it, the database is asked again.
        let after = t0 + DATABASE_CHECK_KEPT;
        assert!(!health.database_up(after, || async { false }).await);
        assert!(!health.database_up(after, || async { true }).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_database_that_does_not_answer_is_down() {
        let health = Health::default();
        let up = health
            .database_up(Instant::now(), std::future::pending::<bool>)
            .await;
        assert!(!up);
    }

    #[test]
    fn what_is_down_is_named_and_draining_comes_first() {
        use PartState::*;
        let ready = HealthBody::of("n1", false, Up, NotUsed);
        assert_eq!(ready.status, Readiness::Ready);
        assert_eq!(
            serde_json::to_value(&ready).unwrap(),
            serde_json::json!({"status": "ready", "database": "up", "nats": "not used",
                "node": "n1"})
        );
        let db_down = HealthBody::of("n1", false, Down, Up);
        assert_eq!(db_down.status, Readiness::Unavailable);
        assert_eq!(serde_json::to_value(&db_down).unwrap()["database"], "down");
        assert_eq!(
            HealthBody::of("n1", false, Up, Down).status,
            Readiness::Unavailable
        );
        assert_eq!(
            HealthBody::of("n1", true, Up, Up).status,
            Readiness::Draining
        );
    }
}
