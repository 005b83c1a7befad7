//! `/api/sites`: piles that share a grid connection, and what the allocator gave their sessions.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{json_body, time, ApiError, ApiResult, ErrorBody};
use crate::metrics::SiteFigures;
use crate::site::terms::ScheduleTerms;
use crate::site::{current_import_a, Terms, TermsInput};
use crate::store::{Joined, SitePileRow, SiteRow};
use crate::Central;

/// A pile of a site: all its connectors, or the one named.
#[derive(Serialize, ToSchema)]
pub struct SitePileView {
    pile: String,
    connector: Option<i64>,
}

/// A session on a site, as the allocator last decided it.
#[derive(Serialize, ToSchema)]
pub struct SiteSessionView {
    pile: String,
    connector: Option<i64>,
    transaction: i64,
    /// A per phase it may draw (null before the allocator's first decision).
    granted_a: Option<f64>,
    /// Its last Current.Import (the highest phase), A.
    measured_a: Option<f64>,
    /// It waits for capacity.
    queued: bool,
}

/// A site.
#[derive(Serialize, ToSchema)]
pub struct SiteView {
    id: i64,
    name: String,
    /// A per phase the grid connection gives.
    capacity_a: f64,
    phases: u8,
    /// The least a session is given, or it waits.
    min_a: f64,
    /// What each connector may draw without the central (its TxDefaultProfile).
    failsafe_a: f64,
    settle_s: i64,
    schedule: Option<ScheduleTerms>,
    /// idTag to priority group (higher first; others 0).
    priorities: BTreeMap<String, u32>,
    piles: Vec<SitePileView>,
    /// The running sessions (only in a site's own view).
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions: Option<Vec<SiteSessionView>>,
    #[schema(format = DateTime)]
    created_at: String,
}

fn refused(e: crate::site::SiteError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn terms_of(row: &SiteRow) -> ApiResult<Terms> {
    Terms::from_row(row).map_err(|e| {
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("site {}: {e}", row.id),
        )
    })
}

fn view(row: &SiteRow, terms: &Terms, piles: &[SitePileRow]) -> SiteView {
    SiteView {
        id: row.id,
        name: terms.name.clone(),
        capacity_a: terms.capacity_a,
        phases: terms.phases,
        min_a: terms.min_a,
        failsafe_a: terms.failsafe_a,
        settle_s: terms.settle_ms / 1000,
        schedule: terms.schedule.clone(),
        priorities: terms.priorities.clone(),
        piles: piles
            .iter()
            .filter(|p| p.site == row.id)
            .map(|p| SitePileView {
                pile: p.pile.clone(),
                connector: p.connector,
            })
            .collect(),
        sessions: None,
        created_at: time(row.created_at),
    }
}

async fn load(central: &Central, id: i64) -> ApiResult<SiteRow> {
    central
        .repo()
        .site(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no site {id}")))
}

/// How many connectors of a pile a membership takes: the one named, or as many as the pile
/// reported (its StatusNotifications, its NumberOfConnectors), at least one.
async fn connectors_of(central: &Central, pile: &str, connector: Option<i64>) -> ApiResult<usize> {
    if connector.is_some() {
        return Ok(1);
    }
    let reported = central
        .repo()
        .connectors(Some(pile))
        .await?
        .iter()
        .filter(|c| c.connector > 0)
        .count();
    let configured = central
        .repo()
        .configuration(pile)
        .await?
        .iter()
        .find(|c| c.key == "NumberOfConnectors")
        .and_then(|c| c.value.as_deref()?.trim().parse::<usize>().ok())
        .unwrap_or(0);
    Ok(reported.max(configured).max(1))
}

/// Refuses terms whose fail-safe, drawn by every connector of the site's piles at once, would
/// exceed its lowest capacity (piles that lose the central could then overload it).
async fn check_failsafe(central: &Central, terms: &Terms, piles: &[SitePileRow]) -> ApiResult<()> {
    let mut connectors = 0;
    for p in piles {
        connectors += connectors_of(central, &p.pile, p.connector).await?;
    }
    terms
        .site()
        .and_then(|s| s.check_connectors(connectors))
        .map_err(refused)
}

/// The sites
#[utoipa::path(get, path = "/api/sites", operation_id = "list_sites", tag = "sites",
    responses((status = 200, description = "the sites, by id, with their piles", body = Vec<SiteView>)))]
pub async fn list(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<SiteView>>> {
    let rows = central.repo().sites().await?;
    let piles = central.repo().site_piles(None).await?;
    let mut out = Vec::new();
    for row in &rows {
        out.push(view(row, &terms_of(row)?, &piles));
    }
    Ok(Json(out))
}

/// Creates a site
///
/// Its capacity in A per phase (`capacity_a`) or in kW (`capacity_kw`, converted at 230 V per
/// phase); its piles are added with `PUT /api/sites/{id}/piles/{pile}`.
#[utoipa::path(post, path = "/api/sites", operation_id = "create_site", tag = "sites",
    request_body = TermsInput,
    responses(
        (status = 201, description = "created", body = SiteView),
        (status = 400, description = "the terms do not hold (a capacity below the minimum, a schedule with overlaps or, when it covers all, gaps, ...); the reason is in `error`", body = ErrorBody)))]
pub async fn create(
    State(central): State<Arc<Central>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<SiteView>)> {
    let input: TermsInput = json_body(&body)?;
    let terms = Terms::create(input).map_err(refused)?;
    let now = chrono::Utc::now().timestamp_millis();
    let id = central.repo().create_site(&terms.to_row(0, now)).await?;
    let row = load(&central, id).await?;
    Ok((StatusCode::CREATED, Json(view(&row, &terms, &[]))))
}

/// A site, its piles and its running sessions
#[utoipa::path(get, path = "/api/sites/{id}", operation_id = "show_site", tag = "sites",
    params(("id" = i64, Path, description = "the site's id")),
    responses(
        (status = 200, description = "the site", body = SiteView),
        (status = 400, description = "the id is not a number", body = ErrorBody),
        (status = 404, description = "no such site", body = ErrorBody)))]
pub async fn show(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<SiteView>> {
    let row = load(&central, id).await?;
    let piles = central.repo().site_piles(Some(id)).await?;
    let mut site = view(&row, &terms_of(&row)?, &piles);
    site.sessions = Some(sessions(&central, id, &piles).await?);
    Ok(Json(site))
}

async fn sessions(
    central: &Central,
    site: i64,
    piles: &[SitePileRow],
) -> ApiResult<Vec<SiteSessionView>> {
    let repo = central.repo();
    let mut out = Vec::new();
    for p in piles {
        for t in repo.transactions(Some(&p.pile), Some(true)).await? {
            if p.connector.is_some() && t.connector != p.connector {
                continue;
            }
            let last = repo.last_allocation(site, t.id).await?;
            let measured_a = repo
                .latest_meter_values(t.id, 5)
                .await?
                .iter()
                .find_map(|m| current_import_a(&m.sampled));
            out.push(SiteSessionView {
                pile: p.pile.clone(),
                connector: t.connector,
                transaction: t.id,
                granted_a: last.as_ref().map(|a| a.granted_a),
                measured_a,
                queued: last.is_some_and(|a| a.queued),
            });
        }
    }
    Ok(out)
}

/// Each site's capacity in force now and the sums of its running sessions' grants and last
/// measured currents, for `/metrics`.
pub(crate) async fn figures(central: &Central) -> ApiResult<Vec<SiteFigures>> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::new();
    for row in central.repo().sites().await? {
        let terms = terms_of(&row)?;
        let capacity_a = terms.site().map_err(refused)?.capacity_at(now);
        let piles = central.repo().site_piles(Some(row.id)).await?;
        let sessions = sessions(central, row.id, &piles).await?;
        out.push(SiteFigures {
            id: row.id,
            name: terms.name.clone(),
            capacity_a,
            granted_a: sessions
                .iter()
                .filter(|s| !s.queued)
                .filter_map(|s| s.granted_a)
                .sum(),
            measured_a: sessions.iter().filter_map(|s| s.measured_a).sum(),
        });
    }
    Ok(out)
}

/// Changes a site's terms
///
/// The fields given replace the site's; `"schedule": null` removes the schedule.
#[utoipa::path(patch, path = "/api/sites/{id}", operation_id = "change_site", tag = "sites",
    params(("id" = i64, Path, description = "the site's id")),
    request_body = TermsInput,
    responses(
        (status = 200, description = "changed", body = SiteView),
        (status = 400, description = "the id is not a number, or the terms do not hold; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such site", body = ErrorBody)))]
pub async fn change(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<SiteView>> {
    let input: TermsInput = json_body(&body)?;
    let row = load(&central, id).await?;
    let terms = terms_of(&row)?.change(input).map_err(refused)?;
    let piles = central.repo().site_piles(Some(id)).await?;
    check_failsafe(&central, &terms, &piles).await?;
    let changed = terms.to_row(id, row.created_at);
    if !central.repo().update_site(&changed).await? {
        return Err(ApiError::not_found(format!("no site {id}")));
    }
    Ok(Json(view(&changed, &terms, &piles)))
}

/// Removes a site (its piles are on none after)
#[utoipa::path(delete, path = "/api/sites/{id}", operation_id = "delete_site", tag = "sites",
    params(("id" = i64, Path, description = "the site's id")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "the id is not a number; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such site", body = ErrorBody)))]
pub async fn delete(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if !central.repo().delete_site(id).await? {
        return Err(ApiError::not_found(format!("no site {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Which connectors of the pile join.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// Only this connector (default all of them).
    #[schema(minimum = 1)]
    connector: Option<i64>,
}

fn on_other_site(pile: &str, other: i64) -> ApiError {
    ApiError::bad_request(format!(
        "pile {pile} is on site {other}: take it off that site first"
    ))
}

/// Puts a pile (or one of its connectors) on a site
///
/// A pile belongs to one site at most.
#[utoipa::path(put, path = "/api/sites/{id}/piles/{pile}", operation_id = "add_site_pile", tag = "sites",
    params(("id" = i64, Path, description = "the site's id"),
        ("pile" = String, Path, description = "the pile's identity")),
    request_body(content = Option<Membership>, description = "empty: all its connectors"),
    responses(
        (status = 200, description = "the pile is on the site", body = SiteView),
        (status = 400, description = "the id is not a number, the pile is on another site, or the connectors' fail-safe together would exceed the lowest capacity; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such site or pile", body = ErrorBody)))]
pub async fn add_pile(
    State(central): State<Arc<Central>>,
    Path((id, pile)): Path<(i64, String)>,
    body: Bytes,
) -> ApiResult<Json<SiteView>> {
    let membership: Membership = if body.trim_ascii().is_empty() {
        Membership::default()
    } else {
        json_body(&body)?
    };
    if membership.connector.is_some_and(|c| c < 1) {
        return Err(ApiError::bad_request("`connector` must be at least 1"));
    }
    let row = load(&central, id).await?;
    if central.repo().pile(&pile).await?.is_none() {
        return Err(ApiError::not_found(format!("no pile {pile}")));
    }
    if let Some(other) = central.repo().site_of_pile(&pile).await? {
        if other.site != id {
            return Err(on_other_site(&pile, other.site));
        }
    }
    let terms = terms_of(&row)?;
    let mut piles: Vec<SitePileRow> = central
        .repo()
        .site_piles(Some(id))
        .await?
        .into_iter()
        .filter(|p| p.pile != pile)
        .collect();
    piles.push(SitePileRow {
        site: id,
        pile: pile.clone(),
        connector: membership.connector,
    });
    check_failsafe(&central, &terms, &piles).await?;
    match central
        .repo()
        .join_site(id, &pile, membership.connector)
        .await?
    {
        Joined::Added => {}
        Joined::OtherSite(other) => return Err(on_other_site(&pile, other)),
        Joined::NoSite => return Err(ApiError::not_found(format!("no site {id}"))),
    }
    piles.sort_by(|a, b| a.pile.cmp(&b.pile));
    Ok(Json(view(&row, &terms, &piles)))
}

/// Takes a pile off a site
#[utoipa::path(delete, path = "/api/sites/{id}/piles/{pile}", operation_id = "remove_site_pile", tag = "sites",
    params(("id" = i64, Path, description = "the site's id"),
        ("pile" = String, Path, description = "the pile's identity")),
    responses(
        (status = 204, description = "taken off"),
        (status = 400, description = "the id is not a number; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "the pile is not on that site", body = ErrorBody)))]
pub async fn remove_pile(
    State(central): State<Arc<Central>>,
    Path((id, pile)): Path<(i64, String)>,
) -> ApiResult<StatusCode> {
    if !central.repo().leave_site(id, &pile).await? {
        return Err(ApiError::not_found(format!(
            "pile {pile} is not on site {id}"
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AllocationQuery {
    /// At most this many (default 100, at most 1000).
    limit: Option<i64>,
    /// Only decisions before this time (RFC 3339), for the next page.
    before: Option<String>,
}

/// One decision of the allocator.
#[derive(Serialize, ToSchema)]
pub struct AllocationView {
    #[schema(format = DateTime)]
    time: String,
    pile: String,
    connector: i64,
    transaction: i64,
    /// A per phase.
    granted_a: f64,
    queued: bool,
    why: String,
}

/// What the allocator decided on a site, newest first
#[utoipa::path(get, path = "/api/sites/{id}/allocations", operation_id = "site_allocations", tag = "sites",
    params(("id" = i64, Path, description = "the site's id"), AllocationQuery),
    responses(
        (status = 200, description = "the decisions", body = Vec<AllocationView>),
        (status = 400, description = "a parameter does not parse; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such site", body = ErrorBody)))]
pub async fn allocations(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
    Query(q): Query<AllocationQuery>,
) -> ApiResult<Json<Vec<AllocationView>>> {
    load(&central, id).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("`limit` must be 1 to 1000"));
    }
    let before = match q.before.as_deref() {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| ApiError::bad_request(format!("`before` {t:?}: {e}")))?
                .timestamp_millis(),
        ),
    };
    let rows = central.repo().allocations(id, before, limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| AllocationView {
                time: time(r.time),
                pile: r.pile,
                connector: r.connector,
                transaction: r.transaction_id,
                granted_a: r.granted_a,
                queued: r.queued,
                why: r.why,
            })
            .collect(),
    ))
}
