//! A campaign as the store keeps it: its row, its piles' rows, and back.

use super::{Campaign, Rollout, Spec, State};
use crate::store::{CampaignRow, RolloutRow, StoreError};

/// Whether a stored campaign still runs (`running`, or `cancelling`: piles still upgrading).
pub fn is_running(row: &CampaignRow) -> bool {
    row.state != State::Finished.as_str() && row.state != State::Cancelled.as_str()
}

/// A pile's upgrade as the store keeps it.
pub fn rollout_row(campaign: i64, position: usize, r: &Rollout) -> RolloutRow {
    RolloutRow {
        campaign,
        position: position as i64,
        pile: r.pile.clone(),
        phase: r.phase.as_str().to_owned(),
        outcome: r.outcome.map(|o| o.as_str().to_owned()),
        state: serde_json::to_string(r).expect("a rollout serializes"),
    }
}

/// A campaign read back from the store.
pub fn from_rows(row: &CampaignRow, rollouts: &[RolloutRow]) -> Result<Campaign, StoreError> {
    let spec: Spec = serde_json::from_str(&row.spec)
        .map_err(|e| StoreError::Failed(format!("campaign {}: {e}", row.id)))?;
    let rollouts = rollouts
        .iter()
        .map(|r| serde_json::from_str::<Rollout>(&r.state))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| StoreError::Failed(format!("campaign {}: {e}", row.id)))?;
    Ok(Campaign {
        id: row.id,
        created_at: row.created_at,
        spec,
        rollouts,
        cancelled: row.state == "cancelling" || row.state == State::Cancelled.as_str(),
        finished_at: row.finished_at,
    })
}

/// The state column: `running`, `cancelling` (cancelled, piles still upgrading), `finished` or
/// `cancelled`.
pub fn stored_state(c: &Campaign) -> String {
    match (c.state(), c.cancelled) {
        (State::Running, true) => "cancelling".into(),
        (s, _) => s.as_str().into(),
    }
}
