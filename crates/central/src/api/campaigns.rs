//! `/api/firmware` (images) and `/api/campaigns` (upgrades of many piles, FAQ 3.10 and 3.17).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{json_body, schema, time, time_opt, ApiError, ApiResult, ErrorBody};
use crate::campaign::runner::from_rows;
use crate::campaign::{Campaign, Outcome, Phase, Refusal, Rollout, Spec, Step, UpdateTerms};
use crate::firmware::{self, ImageView, NewImage};
use crate::store::{CampaignCreated, ImageRow, PileRow, WriteOp, WriteResult};
use crate::Central;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// The file name (the last segment of its URL): no `/`, `\` or control characters, at
    /// most 200 bytes.
    #[param(required = true, min_length = 1, max_length = 200)]
    name: Option<String>,
    /// The firmware type; default derived from the name.
    target: Option<String>,
    /// The version a pile reports once it runs the image, at most 50 characters.
    version: Option<String>,
    /// The model it is built for; default a parenthesised code in the name.
    model: Option<String>,
}

/// Stores a firmware image (the body) and serves it to piles
#[utoipa::path(post, path = "/api/firmware", operation_id = "upload_firmware", tag = "firmware",
    params(ImageQuery),
    request_body(content = crate::firmware::Binary, content_type = "application/octet-stream", description = "the image"),
    responses(
        (status = 201, description = "stored", body = ImageView),
        (status = 400, description = "the name, the version or the body does not fit; the reason is in `error`", body = ErrorBody),
        (status = 413, description = "the image is larger than 256 MiB", body = ErrorBody),
        (status = 503, description = "the store failed to keep the image", body = ErrorBody)))]
pub async fn upload(
    State(central): State<Arc<Central>>,
    Query(q): Query<ImageQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ImageView>)> {
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
        Json(firmware::image_view(&central, &image)),
    ))
}

/// The manufacturer's signature of an image.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageSignatureBody {
    /// SHA-256 of the image signed with ECDSA P-256 (the DER signature) or RSA PKCS#1 v1.5,
    /// base64.
    #[schema(max_length = 800)]
    signature: String,
    /// The certificate of the signing key, PEM.
    #[schema(max_length = 5500)]
    signing_certificate: String,
}

/// Keeps the manufacturer's signature of an image
///
/// Checked first: the signature must verify over the image's bytes with the signing
/// certificate's key. A signed campaign sends it (SignedUpdateFirmware) in place of one the
/// central's firmware signer makes.
#[utoipa::path(post, path = "/api/firmware/{id}/signature", operation_id = "sign_firmware", tag = "firmware",
    params(("id" = i64, Path, description = "the image's id")),
    request_body = ImageSignatureBody,
    responses(
        (status = 200, description = "kept", body = ImageView),
        (status = 400, description = "the id is not a number, the body does not fit, or the signature does not verify over the image; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such image", body = ErrorBody),
        (status = 503, description = "the store failed", body = ErrorBody)))]
pub async fn sign(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<ImageView>> {
    let req: ImageSignatureBody = json_body(&body)?;
    let image =
        firmware::set_signature(&central, id, &req.signature, &req.signing_certificate).await?;
    Ok(Json(firmware::image_view(&central, &image)))
}

/// The firmware images
#[utoipa::path(get, path = "/api/firmware", operation_id = "list_firmware", tag = "firmware",
    responses((status = 200, description = "the images", body = Vec<ImageView>)))]
pub async fn images(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<ImageView>>> {
    let rows = central.repo().images().await?;
    Ok(Json(
        rows.iter()
            .map(|i| firmware::image_view(&central, i))
            .collect(),
    ))
}

/// A campaign to start.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// Image ids, installed in this order.
    #[schema(min_items = 1)]
    firmware: Vec<i64>,
    /// The piles to upgrade; those that cannot take part are listed in the campaign's
    /// `refused`.
    #[schema(min_items = 1)]
    piles: Vec<String>,
    /// At most this many piles upgrade at once (default 10).
    #[schema(minimum = 1)]
    batch_size: Option<usize>,
    /// The retrieveDate of UpdateFirmware: this many seconds after it is sent (default 0).
    retrieve_in_s: Option<u32>,
    /// UpdateFirmware's `retries` and `retryInterval` (seconds): a pile's failed download is
    /// waited for this many times before it counts as failed.
    retries: Option<u32>,
    retry_interval_s: Option<u32>,
    /// Seconds from now after which what is not done has timed out (default a day).
    deadline_s: Option<u32>,
    /// Signed firmware (the security extension): the piles get SignedUpdateFirmware with each
    /// image's signature, the manufacturer's it was uploaded with, else the central's firmware
    /// signer's (`GET /api/security/firmware-root` is its manufacturer root), and report with
    /// SignedFirmwareStatusNotification. An image with neither is a 400. Default false.
    signed: Option<bool>,
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
    busy: &HashMap<String, i64>,
) -> ApiResult<Result<PileRow, String>> {
    let Some(row) = central.repo().pile(pile).await? else {
        return Ok(Err("no such pile".into()));
    };
    if row.registration != "Accepted" {
        return Ok(Err(format!(
            "its registration is {}, not Accepted",
            row.registration
        )));
    }
    if let Some(other) = busy.get(pile) {
        return Ok(Err(format!("it is in campaign {other}, still running")));
    }
    for image in images {
        if let Err(misfit) = oem::firmware::fits(image.model.as_deref(), row.model.as_deref()) {
            return Ok(Err(format!("{}: {misfit}", image.name)));
        }
    }
    Ok(Ok(row))
}

/// Starts a firmware campaign
///
/// The images are installed in order on every pile, a batch at a time (FAQ 3.10, 3.17). A
/// pile takes part when it is registered Accepted, in no running campaign, and of a model
/// every image fits.
#[utoipa::path(post, path = "/api/campaigns", operation_id = "create_campaign", tag = "campaigns",
    request_body = NewCampaign,
    responses(
        (status = 201, description = "started; piles that do not fit are in `refused`", body = CampaignView),
        (status = 400, description = "the body does not fit, names an image that does not exist, or is signed with an image that has no signature and no firmware signer set; the reason is in `error`", body = ErrorBody),
        (status = 409, description = "no pile can take part (each one's reason is in `error`), or a pile was taken by a campaign created at the same moment (named in `error`)", body = ErrorBody)))]
pub async fn create(
    State(central): State<Arc<Central>>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CampaignView>)> {
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
            .repo()
            .image(*id)
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("there is no firmware image {id}")))?;
        images.push(image);
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut seen = HashSet::new();
    let (mut taken, mut refused) = (Vec::new(), Vec::new());
    let mut versions = HashMap::new();
    // The piles in running campaigns, whichever node runs them.
    let busy = central.campaigns().busy_piles().await?;
    for pile in req.piles.iter().filter(|p| seen.insert(p.as_str())) {
        match admit(&central, pile, &images, &busy).await? {
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
    let signed = req.signed.unwrap_or(false);
    let mut steps: Vec<Step> = images
        .iter()
        .map(|i| Step {
            image: i.id,
            name: i.name.clone(),
            url: firmware::url(&central, i),
            version: i.version.clone(),
            signature: None,
        })
        .collect();
    let signed_requests = if signed {
        let signer = crate::campaign::signer::load(central.repo().as_ref())
            .await
            .map_err(signer_failed)?;
        for (step, image) in steps.iter_mut().zip(&images) {
            step.signature = Some(firmware::signature(&central, signer.as_ref(), image).await?);
        }
        // Request ids no other campaign is likely to use: a random base, plus the step.
        Some(rand::random_range(1..i32::MAX / 2))
    } else {
        None
    };
    let spec = Spec {
        steps,
        batch_size,
        update: UpdateTerms {
            retrieve_in: i64::from(req.retrieve_in_s.unwrap_or(0)) * 1000,
            retries,
            retry_interval: i64::from(retry_interval_s) * 1000,
            signed_requests,
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
    let rows: Vec<_> = campaign
        .rollouts
        .iter()
        .enumerate()
        .map(|(i, r)| crate::campaign::runner::rollout_row(0, i, r))
        .collect();
    let spec_json = serde_json::to_string(&campaign.spec).expect("a spec serializes");
    let id = match central
        .repo()
        .create_campaign(&spec_json, &rows, now)
        .await?
    {
        CampaignCreated::Id(id) => id,
        CampaignCreated::Busy { pile, campaign } => {
            return Err(ApiError::conflict(format!(
                "pile {pile} is in campaign {campaign}, still running (created at the same \
                 moment): this campaign is not started"
            )))
        }
    };
    campaign.id = id;
    central.campaigns().add(campaign.clone(), versions).await;
    let node = central.campaigns().node_of(id).await?;
    Ok((StatusCode::CREATED, Json(campaign_view(&campaign, node))))
}

/// The firmware signer failed to load: the store, or what it holds.
pub(super) fn signer_failed(e: crate::campaign::signer::SignerError) -> ApiError {
    match e {
        crate::campaign::signer::SignerError::Store(e) => e.into(),
        other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// A pile's upgrade in a campaign.
#[derive(Serialize, ToSchema)]
#[schema(as = CampaignPile)]
pub struct RolloutView {
    pile: String,
    state: Phase,
    /// The image being installed, from 1.
    step: usize,
    /// Its name.
    image: Option<String>,
    /// The pile's last FirmwareStatusNotification status.
    status: Option<String>,
    /// The download progress.
    percent: Option<u8>,
    /// Download attempts that failed in the current step.
    failed_attempts: u32,
    /// The version before the current step, and the one the pile booted with after it.
    from_version: Option<String>,
    to_version: Option<String>,
    /// The version before the first step.
    original_version: Option<String>,
    /// Null until it is done.
    result: Option<Outcome>,
    /// Why it failed, timed out or was skipped.
    error: Option<String>,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    /// Seconds since it started, or until it finished.
    duration_s: Option<i64>,
}

fn rollout_view(r: &Rollout, steps: &[Step]) -> RolloutView {
    let duration = r.started_at.map(|s| {
        (r.finished_at
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
            - s)
            / 1000
    });
    RolloutView {
        pile: r.pile.clone(),
        state: r.phase,
        step: (r.step + 1).min(steps.len()),
        image: steps
            .get(r.step.min(steps.len().saturating_sub(1)))
            .map(|s| s.name.clone()),
        status: r.status.clone(),
        percent: r.percent,
        failed_attempts: r.failed_attempts,
        from_version: r.from_version.clone(),
        to_version: r.to_version.clone(),
        original_version: r.original_version.clone(),
        result: r.outcome,
        error: r.error.clone(),
        started_at: time_opt(r.started_at),
        finished_at: time_opt(r.finished_at),
        duration_s: duration,
    }
}

/// An image of a campaign, in the order they are installed.
#[derive(Serialize, ToSchema)]
#[schema(as = CampaignFirmware)]
pub struct StepView {
    /// The image's id.
    id: i64,
    name: String,
    version: Option<String>,
    url: String,
    /// In a signed campaign, the image's signature (base64) SignedUpdateFirmware carries.
    signature: Option<String>,
}

/// A firmware campaign and each pile's progress.
#[derive(Serialize, ToSchema)]
#[schema(as = Campaign)]
pub struct CampaignView {
    id: i64,
    #[schema(schema_with = schema::campaign_state)]
    state: String,
    /// In a cluster, the node that runs it (the holder of its lease `campaign:{id}`); null
    /// when none does (it is over, or passes from a stopped node to another), and alone.
    node: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
    firmware: Vec<StepView>,
    batch_size: usize,
    retrieve_in_s: i64,
    /// UpdateFirmware's `retries`.
    retries: u32,
    /// UpdateFirmware's `retryInterval`, seconds.
    retry_interval_s: i64,
    /// After it, what is not done has timed out.
    #[schema(format = DateTime)]
    deadline: String,
    /// Signed firmware: SignedUpdateFirmware, followed by SignedFirmwareStatusNotification.
    signed: bool,
    /// How many piles have each result, or are `waiting` or `upgrading`.
    counts: BTreeMap<&'static str, usize>,
    piles: Vec<RolloutView>,
    /// The piles left out when it was created, and why.
    refused: Vec<Refusal>,
}

pub fn campaign_view(c: &Campaign, node: Option<String>) -> CampaignView {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in &c.rollouts {
        let key = match r.outcome {
            Some(o) => o.as_str(),
            None if r.phase == Phase::Waiting => "waiting",
            None => "upgrading",
        };
        *counts.entry(key).or_default() += 1;
    }
    CampaignView {
        id: c.id,
        state: crate::campaign::runner::stored_state(c),
        node,
        created_at: time(c.created_at),
        finished_at: time_opt(c.finished_at),
        firmware: c
            .spec
            .steps
            .iter()
            .map(|s| StepView {
                id: s.image,
                name: s.name.clone(),
                version: s.version.clone(),
                url: s.url.clone(),
                signature: s.signature.as_ref().map(|g| g.signature.clone()),
            })
            .collect(),
        batch_size: c.spec.batch_size,
        retrieve_in_s: c.spec.update.retrieve_in / 1000,
        retries: c.spec.update.retries,
        retry_interval_s: c.spec.update.retry_interval / 1000,
        deadline: time(c.spec.deadline),
        signed: c.is_signed(),
        counts,
        piles: c
            .rollouts
            .iter()
            .map(|r| rollout_view(r, &c.spec.steps))
            .collect(),
        refused: c.spec.refused.clone(),
    }
}

/// A campaign: as it runs here, else as the store has it.
async fn load(central: &Central, id: i64) -> ApiResult<Campaign> {
    if let Some(c) = central.campaigns().get(id) {
        return Ok(c);
    }
    let row = central
        .repo()
        .campaigns()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no campaign {id}")))?;
    let rollouts = central.repo().rollouts(id).await?;
    Ok(from_rows(&row, &rollouts)?)
}

/// A campaign's view, with the node that runs it.
async fn view(central: &Central, c: &Campaign) -> ApiResult<CampaignView> {
    let node = match c.finished_at {
        Some(_) => None,
        None => central.campaigns().node_of(c.id).await?,
    };
    Ok(campaign_view(c, node))
}

/// Every campaign, newest first
#[utoipa::path(get, path = "/api/campaigns", operation_id = "list_campaigns", tag = "campaigns",
    responses((status = 200, description = "the campaigns", body = Vec<CampaignView>)))]
pub async fn list(State(central): State<Arc<Central>>) -> ApiResult<Json<Vec<CampaignView>>> {
    let mut out = Vec::new();
    for row in central.repo().campaigns().await?.into_iter().rev() {
        let c = match central.campaigns().get(row.id) {
            Some(c) => c,
            None => from_rows(&row, &central.repo().rollouts(row.id).await?)?,
        };
        out.push(view(&central, &c).await?);
    }
    Ok(Json(out))
}

/// A campaign and each pile's progress
#[utoipa::path(get, path = "/api/campaigns/{id}", operation_id = "show_campaign", tag = "campaigns",
    params(("id" = i64, Path, description = "the campaign's id")),
    responses(
        (status = 200, description = "the campaign", body = CampaignView),
        (status = 400, description = "the id is not a number; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such campaign", body = ErrorBody)))]
pub async fn show(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CampaignView>> {
    let c = load(&central, id).await?;
    Ok(Json(view(&central, &c).await?))
}

/// Cancels a campaign: no pile starts any more; those upgrading are followed to their end
///
/// OCPP cannot stop an upgrade. Asked of a node that does not run the campaign, the cancel is
/// recorded in the store, and the node that runs it (or takes it up) applies it.
#[utoipa::path(post, path = "/api/campaigns/{id}/cancel", operation_id = "cancel_campaign", tag = "campaigns",
    params(("id" = i64, Path, description = "the campaign's id")),
    responses(
        (status = 200, description = "the campaign", body = CampaignView),
        (status = 400, description = "the id is not a number; the reason is in `error`", body = ErrorBody),
        (status = 404, description = "no such campaign", body = ErrorBody),
        (status = 409, description = "it is finished or cancelled already", body = ErrorBody)))]
pub async fn cancel(
    State(central): State<Arc<Central>>,
    Path(id): Path<i64>,
) -> ApiResult<Json<CampaignView>> {
    let here = central.campaigns().get(id).is_some();
    let cancelled = if here {
        central.campaigns().cancel(id)
    } else {
        // Run by another node, or by none right now: recorded where every node reads it.
        let written = central
            .writer()
            .write(WriteOp::CancelCampaign { id })
            .await?;
        let recorded = written == WriteResult::Affected(1);
        if recorded {
            crate::campaign::runner::cancel_recorded(&central, id);
        }
        recorded
    };
    if !cancelled {
        // Finished, or not known at all (404).
        let c = load(&central, id).await?;
        return Err(ApiError::conflict(format!(
            "campaign {} is {} already",
            c.id,
            c.state().as_str()
        )));
    }
    let c = load(&central, id).await?;
    Ok(Json(view(&central, &c).await?))
}
