//! The fleet: `GET /api/piles` paged and filtered by the database, and `GET /api/fleet`, the
//! fleet at a glance.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use ocpp::ChargePointStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::piles::{pile_view, PileView};
use super::{time, ApiError, ApiResult, ErrorBody};
use crate::store::{ConnectorRow, Millis, PileFilter, PileRow, Tally};
use crate::Central;

/// The most piles one page holds.
pub const MAX_LIMIT: i64 = 1000;

/// The query of `GET /api/piles`. Without `limit` the answer is the array of every pile that
/// matches; with it, one page: `{"piles": [...], "next": ID | null}`, `next` being the `after`
/// of the following page (null on the last).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PileQuery {
    /// Piles per page, 1 to 1000.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The last identity of the previous page (its `next`); needs `limit`.
    pub after: Option<String>,
    /// A connector has this OCPP status (`Available`, `Charging`, `Faulted`, ...).
    pub status: Option<String>,
    /// `Accepted`, `Pending` or `Rejected`.
    pub registration: Option<String>,
    /// The model, exactly.
    pub model: Option<String>,
    /// The firmware version, exactly.
    pub firmware: Option<String>,
    /// Connected now (`true`) or not (`false`).
    pub online: Option<bool>,
    /// A connector is Faulted or reports an errorCode other than NoError (`true`), or none
    /// does (`false`).
    pub faulted: Option<bool>,
    /// Text in the identity, vendor, model, serial number or firmware version (any case).
    pub q: Option<String>,
}

/// An empty parameter (a form's empty field) is no criterion.
fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl PileQuery {
    /// The filter, the cursor and the page size; a 400 with the reason for a bad value.
    pub fn parse(self) -> ApiResult<(PileFilter, Option<String>, Option<i64>)> {
        if let Some(limit) = self.limit {
            if !(1..=MAX_LIMIT).contains(&limit) {
                return Err(ApiError::bad_request(format!(
                    "limit: {limit} is not within 1 to {MAX_LIMIT}"
                )));
            }
        }
        let after = given(self.after);
        if after.is_some() && self.limit.is_none() {
            return Err(ApiError::bad_request(
                "after: a cursor needs a limit (the size of the page)",
            ));
        }
        let status = given(self.status);
        if let Some(s) = &status {
            if ChargePointStatus::from_wire(s).is_none() {
                let known: Vec<&str> = ChargePointStatus::ALL.iter().map(|s| s.as_str()).collect();
                return Err(ApiError::bad_request(format!(
                    "status: {s:?} is not an OCPP 1.6 connector status ({})",
                    known.join(", ")
                )));
            }
        }
        let registration = given(self.registration);
        if let Some(r) = &registration {
            if !["Accepted", "Pending", "Rejected"].contains(&r.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "registration: {r:?} is not Accepted, Pending or Rejected"
                )));
            }
        }
        let text = given(self.q);
        if text.as_ref().is_some_and(|t| t.chars().count() > 100) {
            return Err(ApiError::bad_request("q: at most 100 characters"));
        }
        let filter = PileFilter {
            status,
            registration,
            model: given(self.model),
            firmware: given(self.firmware),
            online: self.online,
            faulted: self.faulted,
            text,
        };
        Ok((filter, after, self.limit))
    }
}

/// The views of piles, each with its connectors (grouped once: a fleet has tens of thousands).
fn views(central: &Central, piles: Vec<PileRow>, connectors: Vec<ConnectorRow>) -> Vec<PileView> {
    let mut by_pile: HashMap<String, Vec<ConnectorRow>> = HashMap::new();
    for c in connectors {
        by_pile.entry(c.pile.clone()).or_default().push(c);
    }
    piles
        .into_iter()
        .map(|p| {
            let mine = by_pile.remove(&p.id).unwrap_or_default();
            pile_view(central, p, &mine)
        })
        .collect()
}

/// One page of piles.
#[derive(Serialize, ToSchema)]
pub struct PilePage {
    piles: Vec<PileView>,
    /// The `after` of the next page; null on the last.
    next: Option<String>,
}

/// The answer of `GET /api/piles`: every matching pile without `limit`, one page with it.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum PileListing {
    All(Vec<PileView>),
    Page(PilePage),
}

/// All piles (the approval inbox included), or one page of those that match
#[utoipa::path(get, path = "/api/piles", operation_id = "list_piles", tag = "piles",
    params(PileQuery),
    responses(
        (status = 200, description = "without `limit`, the array of every pile that matches; \
            with it, one page: `{\"piles\": [...], \"next\": ID | null}`", body = PileListing),
        (status = 400, description = "a parameter does not fit; the reason is in `error`", body = ErrorBody)))]
pub async fn list(
    State(central): State<Arc<Central>>,
    query: Result<Query<PileQuery>, QueryRejection>,
) -> ApiResult<Json<PileListing>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (filter, after, limit) = query.parse()?;
    let Some(limit) = limit else {
        let piles = central.repo().pile_page(&filter, None, None).await?;
        let connectors = if filter == PileFilter::default() {
            central.repo().connectors(None).await?
        } else {
            let ids: Vec<String> = piles.iter().map(|p| p.id.clone()).collect();
            central.repo().connectors_of(&ids).await?
        };
        return Ok(Json(PileListing::All(views(&central, piles, connectors))));
    };
    // One more than the page: whether a next page exists.
    let mut piles = central
        .repo()
        .pile_page(&filter, after.as_deref(), Some(limit + 1))
        .await?;
    let next = if piles.len() as i64 > limit {
        piles.truncate(limit as usize);
        piles.last().map(|p| p.id.clone())
    } else {
        None
    };
    let ids: Vec<String> = piles.iter().map(|p| p.id.clone()).collect();
    let connectors = central.repo().connectors_of(&ids).await?;
    Ok(Json(PileListing::Page(PilePage {
        piles: views(&central, piles, connectors),
        next,
    })))
}

fn tally_map(tallies: &[Tally]) -> BTreeMap<String, i64> {
    tallies.iter().map(|t| (t.name.clone(), t.count)).collect()
}

/// Midnight (UTC) of the day of `now`.
fn day_start(now: Millis) -> Millis {
    now - now.rem_euclid(86_400_000)
}

/// Ten seconds of the last hour.
#[derive(Serialize, ToSchema)]
pub struct Interval {
    #[schema(format = DateTime)]
    time: String,
    messages_per_second: f64,
    online: u64,
}

/// The fleet at a glance.
#[derive(Serialize, ToSchema)]
pub struct FleetOverview {
    piles: i64,
    online: i64,
    offline: i64,
    /// Piles by registration.
    registration: BTreeMap<String, i64>,
    /// Piles by model.
    models: BTreeMap<String, i64>,
    /// Piles by firmware version.
    firmware: BTreeMap<String, i64>,
    /// Connectors by status.
    connectors: BTreeMap<String, i64>,
    /// Connectors by OCPP errorCode.
    error_codes: BTreeMap<String, i64>,
    /// Connectors by the FAQ 3.6 name of their vendorErrorCode's bits.
    faults: BTreeMap<String, i64>,
    transactions_running: i64,
    /// Energy of the transactions stopped since `energy_since`, and of those running so far.
    energy_today_wh: i64,
    #[schema(format = DateTime)]
    energy_since: String,
    /// Frames received per second over the last interval (null until one has passed).
    messages_per_second: Option<f64>,
    last_hour: Vec<Interval>,
}

/// The fleet at a glance: piles online, connectors by status, faults, transactions, energy
/// today, messages per second and the last hour
#[utoipa::path(get, path = "/api/fleet", operation_id = "fleet_overview", tag = "piles",
    responses((status = 200, description = "the fleet at a glance", body = FleetOverview)))]
pub async fn overview(State(central): State<Arc<Central>>) -> ApiResult<Json<FleetOverview>> {
    let now = chrono::Utc::now().timestamp_millis();
    let since = day_start(now);
    let counts = central.repo().fleet_counts(since).await?;
    // The FAQ 3.6 fault names of the vendorErrorCodes, each counted per connector.
    let mut faults: BTreeMap<String, i64> = BTreeMap::new();
    for t in &counts.vendor_error_codes {
        for name in oem::error_codes::decode(&t.name) {
            *faults.entry(name).or_default() += t.count;
        }
    }
    // Alone, this node's connections; in a cluster, the presence records of every node.
    let online = match central.cluster() {
        None => central.sessions().count() as i64,
        Some(_) => counts.online,
    };
    let last_hour = central
        .pulse
        .last_hour()
        .iter()
        .map(|i| Interval {
            time: time(i.time),
            messages_per_second: i.per_second,
            online: i.online,
        })
        .collect();
    Ok(Json(FleetOverview {
        piles: counts.piles,
        online,
        offline: (counts.piles - online).max(0),
        registration: tally_map(&counts.registration),
        models: tally_map(&counts.models),
        firmware: tally_map(&counts.firmware),
        connectors: tally_map(&counts.connector_status),
        error_codes: tally_map(&counts.error_codes),
        faults,
        transactions_running: counts.running_transactions,
        energy_today_wh: counts.energy_wh,
        energy_since: time(since),
        messages_per_second: central.pulse().rate(central.pulse_now(now)),
        last_hour,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ApiResult<(PileFilter, Option<String>, Option<i64>)> {
        let query: PileQuery = from_query(q);
        query.parse()
    }

    fn from_query(q: &str) -> PileQuery {
        let uri: axum::http::Uri = format!("/api/piles?{q}").parse().unwrap();
        Query::<PileQuery>::try_from_uri(&uri).unwrap().0
    }

    #[test]
    fn queries_become_filters_or_a_reason() {
        let (filter, after, limit) =
            parse("limit=50&after=P-0100&status=Faulted&online=true&q=+m3+&model=").unwrap();
        assert_eq!((after.as_deref(), limit), (Some("P-0100"), Some(50)));
        assert_eq!(
            filter,
            PileFilter {
                status: Some("Faulted".into()),
                online: Some(true),
                text: Some("m3".into()),
                ..PileFilter::default()
            }
        );
        assert_eq!(parse("").unwrap(), (PileFilter::default(), None, None));
        for (q, why) in [
            ("limit=0", "limit: 0 is not within 1 to 1000"),
            ("limit=1001", "limit: 1001 is not within 1 to 1000"),
            ("after=X", "after: a cursor needs a limit"),
            (
                "status=Broken",
                "status: \"Broken\" is not an OCPP 1.6 connector status",
            ),
            ("registration=Maybe", "registration: \"Maybe\" is not"),
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.0, axum::http::StatusCode::BAD_REQUEST, "{q}");
            assert!(e.1.starts_with(why), "{q}: {}", e.1);
        }
    }

    #[test]
    fn the_day_starts_at_midnight_utc() {
        let noon = chrono::DateTime::parse_from_rfc3339("2026-03-04T12:30:00Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(time(day_start(noon)), "2026-03-04T00:00:00.000Z");
    }
}
