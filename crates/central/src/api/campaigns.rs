//! `/api/firmware` (images) and `/api/campaigns` (upgrades of many piles, FAQ 3.10 and 3.17).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, time, time_opt, ApiError, ApiResult};
use crate::campaign::runner::from_rows;
use crate::campaign::{Campaign, Outcome, Phase, Refusal, Rollout, Spec, Step, UpdateTerms};
use crate::firmware::{self, NewImage};
use crate::store::{ImageRow, PileRow, WriteOp, WriteResult};
use crate::Central;

#[derive(Deserialize)]
pub struct ImageQuery {
    name: Option<String>,
    target: Option<String>,
    version: Option<String>,
    model: Option<String>,
}

/// `POST /api/firmware?name=&target=&version=&model=` with the image as the body.
pub async fn upload(
    State(central): State<Arc<Central>>,
    Query(q): Query<ImageQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let image = firmware::store(
        &central,
        NewImage {
            name: q.name.unwrap_or_default(),
            target: q.target,
            version: q.version,
            model: q.model,
        },
        body,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(firmware::image_json(&central, &image)),
    ))
}

pub async fn images(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<Value>>> {
    let rows = central.repo.images().await?;
    Ok(Json(
        rows.iter()
            .map(|i| firmware::image_json(&central, i))
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// Image ids, installed in this order.
    firmware: Vec<i64>,
    piles: Vec<String>,
    batch_size: Option<usize>,
    retrieve_in_s: Option<u32>,
    /// UpdateFirmware's `retries` and `retryInterval` (seconds): a pile's failed download is
    /// waited for this many times before it counts as failed.
    retries: Option<u32>,
    retry_interval_s: Option<u32>,
    /// Seconds from now after which what is not done has timed out (default a day).
    deadline_s: Option<u32>,
}

const DEFAULT_BATCH: usize = 10;
const DEFAULT_DEADLINE_S: u32 = 86_400;
const DEFAULT_RETRIES: u32 = 2;
const DEFAULT_RETRY_INTERVAL_S: u32 = 30;
const MAX_RETRIES: u32 = 100;
const MAX_RETRY_INTERVAL_S: u32 = 86_400;

/// The pile, when it can take part; else why not.
async fn admit(
    central: &Central,
    pile: &str,
    images: &[ImageRow],
) -> ApiResult<Result<PileRow, String>> {
    let Some(row) = central.repo.pile(pile).await? else {
        return Ok(Err("no such pile".into()));
    };
    if row.registration != "Accepted" {
        return Ok(Err(format!(
            "its registration is {}, not Accepted",
            row.registration
        )));
    }
    if let Some(other) = central.campaigns.holding(pile) {
        return Ok(Err(format!("it is in campaign {other}, still running")));
    }
    for image in images {
        if let Err(misfit) = oem::firmware::fits(image.model.as_deref(), row.model.as_deref()) {
            return Ok(Err(format!("{}: {misfit}", image.name)));
        }
    }
    Ok(Ok(row))
}

/// `POST /api/campaigns`.
pub async fn create(
    State(central): State<Arc<Central>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let req: NewCampaign = json_body(&body)?;
    if req.firmware.is_empty() {
        return Err(ApiError::bad_request("`firmware` names no image"));
    }
    if req.piles.is_empty() {
        return Err(ApiError::bad_request("`piles` names no pile"));
    }
    let batch_size = req.batch_size.unwrap_or(DEFAULT_BATCH);
    if batch_size == 0 {
        return Err(ApiError::bad_request("`batch_size` must be at least 1"));
    }
    let retries = req.retries.unwrap_or(DEFAULT_RETRIES);
    if retries > MAX_RETRIES {
        return Err(ApiError::bad_request(format!(
            "`retries` must be at most {MAX_RETRIES}"
        )));
    }
    let retry_interval_s = req.retry_interval_s.unwrap_or(DEFAULT_RETRY_INTERVAL_S);
    if retry_interval_s > MAX_RETRY_INTERVAL_S {
        return Err(ApiError::bad_request(format!(
            "`retry_interval_s` must be at most {MAX_RETRY_INTERVAL_S}"
        )));
    }
    let mut images = Vec::new();
    for id in &req.firmware {
        let image = central
            .repo
            .image(*id)
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("there is no firmware image {id}")))?;
        images.push(image);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut seen = HashSet::new();
    let (mut taken, mut refused) = (Vec::new(), Vec::new());
    let mut versions = HashMap::new();
    for pile in req.piles.iter().filter(|p| seen.insert(p.as_str())) {
        match admit(&central, pile, &images).await? {
            Err(reason) => refused.push(Refusal {
                pile: pile.clone(),
                reason,
            }),
            Ok(row) => {
                versions.insert(pile.clone(), row.firmware_version);
                taken.push(Rollout::new(pile.clone()));
            }
        }
    }
    if taken.is_empty() {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "no pile can take part: {}",
                refused
                    .iter()
                    .map(|r| format!("{}: {}", r.pile, r.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ));
    }
    let spec = Spec {
        steps: images
            .iter()
            .map(|i| Step {
                image: i.id,
                name: i.name.clone(),
                url: firmware::url(&central, i),
                version: i.version.clone(),
            })
            .collect(),
        batch_size,
        update: UpdateTerms {
            retrieve_in: i64::from(req.retrieve_in_s.unwrap_or(0)) * 1000,
            retries,
            retry_interval: i64::from(retry_interval_s) * 1000,
        },
        deadline: now + i64::from(req.deadline_s.unwrap_or(DEFAULT_DEADLINE_S)) * 1000,
        refused,
    };
    let mut campaign = Campaign {
        id: 0,
        created_at: now,
        spec,
        rollouts: taken,
        cancelled: false,
        finished_at: None,
    };
    let rows = campaign
        .rollouts
        .iter()
        .enumerate()
        .map(|(i, r)| crate::campaign::runner::rollout_row(0, i, r))
        .collect();
    let written = central
        .writer
        .write(WriteOp::CreateCampaign {
            spec: serde_json::to_string(&campaign.spec).expect("a spec serializes"),
            rollouts: rows,
        })
        .await?;
    let WriteResult::Id(id) = written else {
        return Err(ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected store answer".into(),
        ));
    };
    campaign.id = id;
    central.campaigns.add(campaign.clone(), versions);
    Ok((StatusCode::CREATED, Json(campaign_json(&campaign))))
}

fn rollout_json(r: &Rollout, steps: &[Step]) -> Value {
    let duration = r.started_at.map(|s| {
        (r.finished_at
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
            - s)
            / 1000
    });
    json!({
        "pile": r.pile,
        "state": r.phase.as_str(),
        "step": (r.step + 1).min(steps.len()),
        "image": steps.get(r.step.min(steps.len().saturating_sub(1))).map(|s| s.name.clone()),
        "status": r.status,
        "percent": r.percent,
        "failed_attempts": r.failed_attempts,
        "from_version": r.from_version,
        "to_version": r.to_version,
        "original_version": r.original_version,
        "result": r.outcome.map(Outcome::as_str),
        "error": r.error,
        "started_at": time_opt(r.started_at),
        "finished_at": time_opt(r.finished_at),
        "duration_s": duration,
    })
}

pub fn campaign_json(c: &Campaign) -> Value {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &c.rollouts {
        let key = match r.outcome {
            Some(o) => o.as_str(),
            None if r.phase == Phase::Waiting => "waiting",
            None => "upgrading",
        };
        *counts.entry(key).or_default() += 1;
    }
    let state = crate::campaign::runner::stored_state(c);
    json!({
        "id": c.id,
        "state": state,
        "created_at": time(c.created_at),
        "finished_at": time_opt(c.finished_at),
        "firmware": c.spec.steps.iter().map(|s| json!({
            "id": s.image, "name": s.name, "version": s.version, "url": s.url,
        })).collect::<Vec<_>>(),
        "batch_size": c.spec.batch_size,
        "retrieve_in_s": c.spec.update.retrieve_in / 1000,
        "retries": c.spec.update.retries,
        "retry_interval_s": c.spec.update.retry_interval / 1000,
        "deadline": time(c.spec.deadline),
        "counts": counts,
        "piles": c.rollouts.iter().map(|r| rollout_json(r, &c.spec.steps)).collect::<Vec<_>>(),
        "refused": c.spec.refused,
    })
}

/// A campaign: the running one in memory, else as the store has it.
async fn load(central: &Central, id: i64) -> ApiResult<Campaign> {
    if let Some(c) = central.campaigns.get(id) {
        return Ok(c);
    }
    let row = central
        .repo
        .campaigns()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    let rollouts = central.repo.rollouts(id).await?;
    Ok(from_rows(&row, &rollouts)?)
}

pub async fn list(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<Value>>> {
    let mut out = Vec::new();
    for row in central.repo.campaigns().await?.into_iter().rev() {
        let c = match central.campaigns.get(row.id) {
            Some(c) => c,
            None => from_rows(&row, &central.repo.rollouts(row.id).await?)?,
        };
        out.push(campaign_json(&c));
    }
    Ok(Json(out))
}

pub async fn show(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    Ok(Json(campaign_json(&load(&central, id).await?)))
}

/// `POST /api/campaigns/{id}/cancel`: no pile starts any more; piles upgrading are followed to
/// their end (OCPP cannot stop an upgrade).
pub async fn cancel(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    if !central.campaigns.cancel(id) {
        // Finished, or not known at all (404).
        let c = load(&central, id).await?;
        return Err(ApiError::conflict(format!(
            "campaign {} is {} already",
            c.id,
            c.state().as_str()
        )));
    }
    Ok(Json(campaign_json(&load(&central, id).await?)))
}
