//! Runs the campaigns: a tick every second, the piles' notifications and boots fed in as the
//! handler answers them, the commands sent (and recorded like the API's), every change of a
//! pile's upgrade written to the store in order, and the running campaigns taken up again when
//! the central system starts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocpp::{
    Action, AvailabilityStatus, AvailabilityType, ChangeAvailabilityRequest, CiString50,
    FirmwareStatus, GetConfigurationRequest, MessageTrigger, Response, Timestamp,
    TriggerMessageRequest, UpdateFirmwareRequest, Uri,
};
use tokio::sync::mpsc;

use super::{Answer, Campaign, Command, Facts, Kind, Millis, Order, Rollout, Spec, State};
use crate::sessions::DeliveryError;
use crate::store::{RolloutRow, StoreError, WriteOp};
use crate::Central;

/// How often the campaigns' clocks move.
const TICK: Duration = Duration::from_secs(1);

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The running campaigns, in memory, and the order in which their changes reach the store.
pub struct Campaigns {
    live: Mutex<Live>,
    saves: mpsc::UnboundedSender<WriteOp>,
}

#[derive(Default)]
struct Live {
    campaigns: BTreeMap<i64, Campaign>,
    /// What was last written of each rollout and campaign, to write only changes.
    saved: HashMap<(i64, String), String>,
    saved_state: HashMap<i64, String>,
    /// The firmware version of each pile in a campaign, as its last boot reported it.
    versions: HashMap<String, Option<String>>,
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
pub fn from_rows(
    row: &crate::store::CampaignRow,
    rollouts: &[RolloutRow],
) -> Result<Campaign, StoreError> {
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

impl Live {
    /// The writes for what changed in a campaign since it was last saved.
    fn changes(&mut self, id: i64, saves: &mpsc::UnboundedSender<WriteOp>) {
        let Some(c) = self.campaigns.get(&id) else {
            return;
        };
        for (i, r) in c.rollouts.iter().enumerate() {
            let row = rollout_row(id, i, r);
            let key = (id, r.pile.clone());
            if self.saved.get(&key) != Some(&row.state) {
                self.saved.insert(key, row.state.clone());
                let _ = saves.send(WriteOp::PutRollout(row));
            }
        }
        let state = stored_state(c);
        if self.saved_state.get(&id) != Some(&state) {
            self.saved_state.insert(id, state.clone());
            let _ = saves.send(WriteOp::CampaignState {
                id,
                state,
                finished_at: c.finished_at,
            });
        }
    }
}

/// The state column: `running`, `cancelling` (cancelled, piles still upgrading), `finished` or
/// `cancelled`.
pub fn stored_state(c: &Campaign) -> String {
    match (c.state(), c.cancelled) {
        (State::Running, true) => "cancelling".into(),
        (s, _) => s.as_str().into(),
    }
}

impl Campaigns {
    /// Takes up the campaigns the store has as running.
    pub async fn load(
        repo: &Arc<dyn crate::store::Repository>,
    ) -> Result<(Campaigns, mpsc::UnboundedReceiver<WriteOp>), StoreError> {
        let (saves, rx) = mpsc::unbounded_channel();
        let mut live = Live::default();
        let now = now_ms();
        for row in repo.campaigns().await? {
            if row.state == State::Finished.as_str() || row.state == State::Cancelled.as_str() {
                continue;
            }
            let rows = repo.rollouts(row.id).await?;
            let mut campaign = from_rows(&row, &rows)?;
            campaign.resume(now);
            live.saved_state.insert(row.id, row.state.clone());
            for r in &campaign.rollouts {
                live.saved.insert((row.id, r.pile.clone()), String::new());
                if let Some(p) = repo.pile(&r.pile).await? {
                    live.versions.insert(r.pile.clone(), p.firmware_version);
                }
            }
            tracing::info!("campaign {}: taken up again", row.id);
            live.campaigns.insert(row.id, campaign);
        }
        Ok((
            Campaigns {
                live: Mutex::new(live),
                saves,
            },
            rx,
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().expect("campaigns lock")
    }

    /// A running campaign, as it is now.
    pub fn get(&self, id: i64) -> Option<Campaign> {
        self.lock().campaigns.get(&id).cloned()
    }

    /// (Whether a campaign runs, whether one of its piles has not started yet.)
    fn activity(&self) -> (bool, bool) {
        let live = self.lock();
        let mut running = live.campaigns.values().filter(|c| c.finished_at.is_none());
        let any = running.clone().next().is_some();
        (
            any,
            running.any(|c| c.rollouts.iter().any(|r| r.phase == super::Phase::Waiting)),
        )
    }

    /// The running campaign a pile is in, if any.
    pub fn holding(&self, pile: &str) -> Option<i64> {
        self.lock()
            .campaigns
            .values()
            .find(|c| c.holds(pile))
            .map(|c| c.id)
    }

    /// Starts a campaign the store has just recorded.
    pub fn add(&self, campaign: Campaign, versions: HashMap<String, Option<String>>) {
        let mut live = self.lock();
        for (i, r) in campaign.rollouts.iter().enumerate() {
            let row = rollout_row(campaign.id, i, r);
            live.saved.insert((campaign.id, r.pile.clone()), row.state);
        }
        live.saved_state
            .insert(campaign.id, State::Running.as_str().into());
        live.versions.extend(versions);
        live.campaigns.insert(campaign.id, campaign);
    }

    /// Cancels a running campaign; false when it is not running.
    pub fn cancel(&self, id: i64) -> bool {
        let mut live = self.lock();
        match live.campaigns.get_mut(&id) {
            Some(c) if c.finished_at.is_none() => c.cancel(),
            _ => return false,
        }
        live.changes(id, &self.saves);
        true
    }

    /// Applies `f` to every running campaign, saves what changed, and hands out the orders
    /// (with the ids of the campaigns that changed).
    fn each(
        &self,
        mut f: impl FnMut(&mut Campaign, &HashMap<String, Option<String>>) -> Vec<Order>,
    ) -> Vec<(i64, Order)> {
        let mut live = self.lock();
        let ids: Vec<i64> = live
            .campaigns
            .values()
            .filter(|c| c.finished_at.is_none())
            .map(|c| c.id)
            .collect();
        let mut orders = Vec::new();
        for id in ids {
            let Live {
                campaigns,
                versions,
                ..
            } = &mut *live;
            let Some(c) = campaigns.get_mut(&id) else {
                continue;
            };
            orders.extend(f(c, versions).into_iter().map(|o| (id, o)));
            live.changes(id, &self.saves);
        }
        orders
    }
}

/// What the handler calls once it has answered a FirmwareStatusNotification.
pub fn notified(central: &Arc<Central>, pile: &str, status: FirmwareStatus) {
    let now = now_ms();
    let orders = central
        .campaigns()
        .each(|c, _| c.on_notification(pile, status.clone(), now));
    dispatch(central, orders);
}

/// What the handler calls once it has answered a BootNotification.
pub fn booted(central: &Arc<Central>, pile: &str, version: Option<&str>) {
    let now = now_ms();
    {
        let mut live = central.campaigns().lock();
        if live.versions.contains_key(pile) {
            live.versions
                .insert(pile.to_owned(), version.map(str::to_owned));
        }
    }
    let orders = central
        .campaigns()
        .each(|c, _| c.on_boot(pile, version, now));
    dispatch(central, orders);
}

/// Writes the campaigns' changes in the order they were made.
pub fn spawn_saver(central: Arc<Central>, mut rx: mpsc::UnboundedReceiver<WriteOp>) {
    tokio::spawn(async move {
        while let Some(op) = rx.recv().await {
            let what = match &op {
                WriteOp::PutRollout(r) => format!("campaign {} pile {}", r.campaign, r.pile),
                WriteOp::CampaignState { id, .. } => format!("campaign {id}"),
                _ => "campaign".into(),
            };
            if let Err(e) = central.writer().write(op).await {
                tracing::error!("campaign state not stored: {e}");
            }
            central.changed(what);
        }
    });
}

/// Moves the campaigns' clocks every second.
pub fn spawn_ticker(central: Arc<Central>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            tick(&central).await;
        }
    });
}

async fn tick(central: &Arc<Central>) {
    let (running, waiting) = central.campaigns().activity();
    if !running {
        return;
    }
    // Whether a pile still to start is charging: only asked when one waits.
    let charging: HashSet<String> = if waiting {
        match central.repo().transactions(None, Some(true)).await {
            Ok(rows) => rows.into_iter().map(|t| t.pile).collect(),
            Err(e) => {
                tracing::warn!("campaigns: active transactions unknown ({e}); waiting");
                return;
            }
        }
    } else {
        HashSet::new()
    };
    let now = now_ms();
    let Some(online) = crate::cluster::online(central).await else {
        return;
    };
    let orders = central.campaigns().each(|c, versions| {
        c.tick(
            |pile| Facts {
                connected: online.contains(pile),
                charging: charging.contains(pile),
                firmware_version: versions.get(pile).cloned().flatten(),
            },
            now,
        )
    });
    dispatch(central, orders);
}

/// Sends each order in a task of its own and feeds its answer back.
fn dispatch(central: &Arc<Central>, orders: Vec<(i64, Order)>) {
    for (campaign, order) in orders {
        let central = central.clone();
        tokio::spawn(async move {
            let kind = order.command.kind();
            let answer = execute(&central, &order.pile, &order.command).await;
            let now = now_ms();
            let more = central.campaigns().each(|c, _| {
                if c.id == campaign {
                    c.on_answer(&order.pile, kind, answer.clone(), now);
                }
                Vec::new()
            });
            dispatch(&central, more);
        });
    }
}

/// The OCPP message of a command.
fn message(command: &Command) -> Result<(Action, String), String> {
    Ok(match command {
        Command::UpdateFirmware {
            location,
            retrieve_date,
            retries,
            retry_interval,
        } => (
            Action::UpdateFirmware,
            ocpp::encode(&UpdateFirmwareRequest {
                location: Uri::new(location.clone()).map_err(|e| e.to_string())?,
                retries: Some(i32::try_from(*retries).map_err(|_| "too many retries")?),
                retrieve_date: Timestamp::from_millis(*retrieve_date)
                    .ok_or("the retrieve date is out of range")?,
                retry_interval: Some(
                    i32::try_from(((*retry_interval).max(0) + 999) / 1000)
                        .map_err(|_| "the retry interval is too long")?,
                ),
            }),
        ),
        Command::TriggerStatus => (
            Action::TriggerMessage,
            ocpp::encode(&TriggerMessageRequest {
                requested_message: MessageTrigger::FirmwareStatusNotification,
                connector_id: None,
            }),
        ),
        Command::ReadProgress => (
            Action::GetConfiguration,
            ocpp::encode(&GetConfigurationRequest {
                key: Some(vec![CiString50::truncating(
                    oem::keys::GET_FIRMWARE_UPGRADE_PERCENTAGES,
                )]),
            }),
        ),
        Command::SetOperative => (
            Action::ChangeAvailability,
            ocpp::encode(&ChangeAvailabilityRequest {
                connector_id: 0,
                kind: AvailabilityType::Operative,
            }),
        ),
    })
}

async fn execute(central: &Central, pile: &str, command: &Command) -> Answer {
    let (action, payload) = match message(command) {
        Ok(m) => m,
        Err(why) => return Answer::Refused(why),
    };
    let outcome = match crate::command_log::call_recorded(central, pile, action, payload).await {
        Ok(outcome) => outcome,
        Err(e) => {
            tracing::warn!("campaign command to {pile} not recorded: {e}");
            return Answer::Lost;
        }
    };
    match outcome {
        Ok(answer) => match (command.kind(), answer.value) {
            (Kind::ReadProgress, Response::GetConfiguration(r)) => Answer::Ok(
                r.configuration_key
                    .unwrap_or_default()
                    .into_iter()
                    .find(|k| {
                        k.key
                            .as_str()
                            .eq_ignore_ascii_case(oem::keys::GET_FIRMWARE_UPGRADE_PERCENTAGES)
                    })
                    .and_then(|k| k.value.map(|v| v.as_str().to_owned())),
            ),
            (Kind::SetOperative, Response::ChangeAvailability(r)) => match r.status {
                AvailabilityStatus::Accepted | AvailabilityStatus::Scheduled => Answer::Ok(None),
                other => Answer::Refused(other.as_str().to_owned()),
            },
            _ => Answer::Ok(None),
        },
        Err(DeliveryError::CallError(e)) => {
            Answer::Refused(format!("{}: {}", e.code.as_str(), e.description))
        }
        Err(_) => Answer::Lost,
    }
}
