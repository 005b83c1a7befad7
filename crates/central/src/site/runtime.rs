//! Sites carried out on the piles: one task per site, on the node that holds its lease
//! `site:{id}`, drives the site's [`Allocator`] from what the store records and sends its limits
//! with SetChargingProfile.
//!
//! Every second the task reads what the piles reported, whichever node holds their connection:
//! the site's terms and piles, each pile's presence and last boot, the running transactions
//! (arrivals and departures), their last Current.Import (MeterValues) and their connector's
//! status (an EV suspended or finished draws nothing). The allocator's limits go out through
//! the command path the API uses (recorded, and in a cluster sent to the node that holds the
//! pile), each answer fed back to it (a refusal or a timeout as rejected; an answer lost with
//! the connection as the pile going offline, since it may have applied the limit); each
//! decision goes to the allocations log. A pile that
//! boots, comes online, or joins the site gets the TxDefaultProfile at the fail-safe current.
//! A node that takes a site's lease starts from what the store says, and sends every session
//! its limit again.
//!
//! In a cluster every write the task makes for its site carries the lease's fence: the
//! allocations log is appended only while this node holds `site:{id}` in the store (checked in
//! the same transaction), and the limits of a decision go out only once it is recorded. A node
//! that lost the lease without noticing (paused, then resumed) finds its write refused, and the
//! task ends there, sending nothing more; the fail-safe and the clearing of a pile that left,
//! which no decision records, go only while the store shows this node holding the lease.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ocpp::{Action, ChargingProfileStatus, Response};
use serde_json::Value;
use tokio::sync::mpsc;

use super::allocator::{Allocator, Arrival, PileLimits, RateUnits, Reaction, Unit};
use super::profiles::{clear_profiles, default_profile, remote_start_profile, tx_profile};
use super::terms::{current_import_a, Terms};
use super::Millis;
use crate::command_log::call_recorded;
use crate::sessions::DeliveryError;
use crate::store::{AllocationRow, At, ConfigRow, Fence, SiteRow, StoreError};
use crate::Central;

/// How often a site's task reads the store and moves the allocator's clock.
pub const EVERY: Duration = Duration::from_secs(1);
/// How often a node looks for sites to run.
const LOOK_FOR_SITES: Duration = Duration::from_secs(2);
/// The most a connector draws when nothing says less (our piles' default rating).
pub const PILE_MAX_A: f64 = 32.0;
/// How often (in steps) a pile's configuration is read again; also at each boot or
/// reconnection.
const READ_CONFIG_EVERY: u32 = 10;
/// Connector statuses in which an EV draws nothing although its transaction runs.
const NOT_DRAWING: [&str; 3] = ["SuspendedEV", "Finishing", "Available"];

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The lease of a site.
pub fn lease_name(id: i64) -> String {
    format!("site:{id}")
}

/// Starts looking for sites: each one found gets its task, run where its lease is held.
pub fn start(central: &Arc<Central>) {
    let central = central.clone();
    tokio::spawn(async move {
        let mut running: HashMap<i64, Arc<AtomicBool>> = HashMap::new();
        let mut every = tokio::time::interval(LOOK_FOR_SITES);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if central.health().is_draining() {
                return;
            }
            let ids: HashSet<i64> = match central.repo().sites().await {
                Ok(rows) => rows.iter().map(|r| r.id).collect(),
                Err(e) => {
                    tracing::warn!("sites: {e}");
                    continue;
                }
            };
            running.retain(|id, live| {
                let keep = ids.contains(id);
                if !keep {
                    live.store(false, Ordering::Relaxed);
                }
                keep
            });
            for &id in &ids {
                if running.contains_key(&id) {
                    continue;
                }
                let live = Arc::new(AtomicBool::new(true));
                running.insert(id, live.clone());
                spawn_site(&central, id, live);
            }
        }
    });
}

fn spawn_site(central: &Arc<Central>, id: i64, live: Arc<AtomicBool>) {
    let keeper = crate::cluster::lease::Keeper::of_node(
        lease_name(id),
        central.cluster().map(|c| c.node()),
        central.options().node_ttl,
        central.repo().clone(),
    );
    let stopping = central.clone();
    let central = central.clone();
    // The job runs as long as the lease is held (dropped the moment it is lost), and ends when
    // the site is removed.
    tokio::spawn(crate::cluster::lease::run_leased(
        keeper,
        EVERY,
        move || stopping.health().is_draining() || !live.load(Ordering::Relaxed),
        move || {
            let central = central.clone();
            async move {
                if let Err(e) = run_site(central, id).await {
                    tracing::warn!("site {id}: {e}");
                }
            }
        },
    ));
}

/// What became of a limit sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    /// Rejected, or not answered within the command timeout.
    Rejected,
    /// The connection was lost (or gone) before the answer: the pile may have applied it.
    Lost,
}

/// A pile's answer to a limit: (pile, transaction, outcome).
type Answer = (String, i64, Outcome);

/// What the task knows of a pile of its site.
struct PileSeen {
    connector: Option<i64>,
    limits: PileLimits,
    /// Its live connection (none: offline).
    connection: Option<(String, i64)>,
    last_boot: Option<Millis>,
}

/// What the task knows of a session.
struct SessionSeen {
    pile: String,
    connector: i64,
    /// The time of the last meter value fed.
    measured_at: Option<Millis>,
    /// The connector's status last seen.
    status: Option<String>,
}

/// One site run on this node.
struct SiteRun {
    central: Arc<Central>,
    id: i64,
    row: SiteRow,
    terms: Terms,
    alloc: Allocator,
    piles: BTreeMap<String, PileSeen>,
    sessions: BTreeMap<i64, SessionSeen>,
    answers: mpsc::UnboundedSender<Answer>,
    /// Steps made, to read the piles' configuration every [`READ_CONFIG_EVERY`].
    steps: u32,
    /// In a cluster, what the task's writes depend on: this node holding the site's lease.
    fence: Option<Fence>,
    /// A write was refused under the lease: another node runs the site now.
    fenced_off: bool,
}

/// Runs a site until it is removed (or the lease is lost: the future is dropped).
async fn run_site(central: Arc<Central>, id: i64) -> Result<(), StoreError> {
    let Some(row) = central.repo().site(id).await? else {
        return Ok(());
    };
    let terms = Terms::from_row(&row).map_err(|e| StoreError::Failed(e.to_string()))?;
    let site = terms
        .site()
        .map_err(|e| StoreError::Failed(e.to_string()))?;
    let (answers, mut answered) = mpsc::unbounded_channel();
    let fence = central.cluster().map(|c| Fence {
        lease: lease_name(id),
        holder: c.node().to_owned(),
    });
    let mut run = SiteRun {
        central,
        id,
        row,
        terms,
        alloc: Allocator::new(site),
        piles: BTreeMap::new(),
        sessions: BTreeMap::new(),
        answers,
        steps: 0,
        fence,
        fenced_off: false,
    };
    tracing::info!("site {id}: allocating on this node");
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some((pile, transaction, outcome)) = answered.recv() => {
                let now = now_ms();
                let r = match outcome {
                    Outcome::Accepted => run.alloc.profile_accepted(now, transaction),
                    Outcome::Rejected => run.alloc.profile_rejected(now, transaction),
                    // Offline until the store shows it connected again (then online, and its
                    // fail-safe sent again): what it holds is unknown meanwhile.
                    Outcome::Lost => match run.piles.get_mut(&pile) {
                        Some(seen) => {
                            seen.connection = None;
                            run.alloc.pile_offline(now, &pile)
                        }
                        None => Reaction::default(),
                    },
                };
                run.carry_out(r).await;
            }
            _ = every.tick() => {
                if run.fenced_off {
                    return Ok(());
                }
                if !run.step().await? {
                    tracing::info!("site {id}: removed");
                    for (pile, seen) in &run.piles {
                        run.release(pile, seen);
                    }
                    return Ok(());
                }
            }
        }
    }
}

/// A pile's limits as its configuration (read after each boot) says.
fn limits_of(config: &[ConfigRow]) -> PileLimits {
    let value = |key: &str| {
        config
            .iter()
            .find(|c| c.key == key)
            .and_then(|c| c.value.clone())
    };
    let number = |key: &str, default: u32| {
        value(key)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(default)
    };
    let connectors = number("NumberOfConnectors", 1).max(1);
    PileLimits {
        connectors,
        max_stack_level: number("ChargeProfileMaxStackLevel", 8),
        rate_units: value("ChargingScheduleAllowedChargingRateUnit")
            .map_or(RateUnits::Current, |v| RateUnits::parse(&v)),
        max_profiles: number("MaxChargingProfilesInstalled", connectors + 1),
        max_a: PILE_MAX_A,
    }
}

/// What the allocator is told of a pile's presence (offline: false, online: true), from
/// whether it was online as last seen (none: new here), whether it was just (re)joined (the
/// allocator then takes it as online), and whether it is online now.
fn presence(was_online: Option<bool>, rejoined: bool, online: bool) -> Option<bool> {
    let believed = rejoined || was_online != Some(false);
    match (believed, online) {
        (true, false) => Some(false),
        // Back: its refusals forgotten, its limits asked again (also after a rejoin).
        (_, true) if was_online == Some(false) => Some(true),
        _ => None,
    }
}

/// The unit a pile takes its limits in.
fn unit_of(limits: &PileLimits) -> Unit {
    match limits.rate_units {
        RateUnits::Power => Unit::W,
        _ => Unit::A,
    }
}

impl SiteRun {
    /// Reads what changed and feeds it to the allocator; false once the site is gone.
    async fn step(&mut self) -> Result<bool, StoreError> {
        let repo = self.central.repo().clone();
        let Some(row) = repo.site(self.id).await? else {
            return Ok(false);
        };
        self.steps = self.steps.wrapping_add(1);
        if row != self.row {
            match Terms::from_row(&row).and_then(|t| t.site().map(|s| (t, s))) {
                Ok((terms, site)) => {
                    self.terms = terms;
                    let r = self.alloc.change_site(now_ms(), site);
                    self.carry_out(r).await;
                    // A new fail-safe goes to every pile.
                    self.piles.values_mut().for_each(|p| p.last_boot = None);
                }
                Err(e) => tracing::warn!("site {}: terms not taken: {e}", self.id),
            }
            self.row = row;
        }
        self.follow_piles().await?;
        self.follow_sessions().await?;
        let r = self.alloc.tick(now_ms());
        self.carry_out(r).await;
        Ok(true)
    }

    /// Piles that joined or left, came online or went offline, booted.
    async fn follow_piles(&mut self) -> Result<(), StoreError> {
        let repo = self.central.repo().clone();
        let members = repo.site_piles(Some(self.id)).await?;
        let names: HashSet<&str> = members.iter().map(|m| m.pile.as_str()).collect();
        let gone: Vec<String> = self
            .piles
            .keys()
            .filter(|p| !names.contains(p.as_str()))
            .cloned()
            .collect();
        for pile in gone {
            if let Some(seen) = self.piles.remove(&pile) {
                self.release(&pile, &seen);
            }
            self.sessions.retain(|_, s| s.pile != pile);
            let r = self.alloc.remove_pile(now_ms(), &pile);
            self.carry_out(r).await;
        }
        for m in members {
            let Some(row) = repo.pile(&m.pile).await? else {
                continue;
            };
            let connection = row
                .connection
                .map(|c| (row.node.clone().unwrap_or_default(), c));
            let now = now_ms();
            let seen = self.piles.get(&m.pile);
            let fresh = self.steps % READ_CONFIG_EVERY == 0
                || seen.is_none_or(|p| p.last_boot != row.last_boot || p.connection != connection);
            let limits = match seen {
                Some(p) if !fresh => p.limits,
                _ => limits_of(&repo.configuration(&m.pile).await?),
            };
            let known = self
                .piles
                .get(&m.pile)
                .map(|p| (p.limits, p.connector, p.connection.clone(), p.last_boot));
            let rejoined = known
                .as_ref()
                .is_none_or(|(l, c, _, _)| *l != limits || *c != m.connector);
            if rejoined {
                let r = self.alloc.join_pile(now, &m.pile, limits);
                self.carry_out(r).await;
            }
            // Whether it was online as last seen (none: new here), and whether it booted or
            // connected again since.
            let (was_online, booted) = match known {
                None => (None, true),
                Some((_, _, was, boot)) => (
                    Some(was.is_some()),
                    boot != row.last_boot || was != connection,
                ),
            };
            let online = connection.is_some();
            match presence(was_online, rejoined, online) {
                Some(false) => {
                    let r = self.alloc.pile_offline(now, &m.pile);
                    self.carry_out(r).await;
                }
                Some(true) => {
                    let r = self.alloc.pile_online(now, &m.pile);
                    self.carry_out(r).await;
                }
                None => {}
            }
            if online && booted {
                self.send_default(&m.pile, m.connector, &limits);
            }
            self.piles.insert(
                m.pile.clone(),
                PileSeen {
                    connector: m.connector,
                    limits,
                    connection,
                    last_boot: row.last_boot,
                },
            );
        }
        Ok(())
    }

    /// Transactions that stopped, then those that started (together, in one plan), then their
    /// draw and their connector's status.
    async fn follow_sessions(&mut self) -> Result<(), StoreError> {
        let repo = self.central.repo().clone();
        // (transaction, pile, connector, idTag, connector status)
        let mut found = Vec::new();
        let piles: Vec<(String, Option<i64>)> = self
            .piles
            .iter()
            .map(|(p, s)| (p.clone(), s.connector))
            .collect();
        for (pile, only) in piles {
            let statuses = repo.connectors(Some(&pile)).await?;
            for t in repo.transactions(Some(&pile), Some(true)).await? {
                let Some(connector) = t.connector else {
                    continue;
                };
                if only.is_none_or(|c| c == connector) {
                    let status = statuses
                        .iter()
                        .find(|c| c.connector == connector)
                        .map(|c| c.status.clone());
                    found.push((t.id, pile.clone(), connector, t.id_tag, status));
                }
            }
        }
        let running: HashSet<i64> = found.iter().map(|f| f.0).collect();
        let ended: Vec<i64> = self
            .sessions
            .keys()
            .filter(|t| !running.contains(t))
            .copied()
            .collect();
        for t in ended {
            self.sessions.remove(&t);
            let r = self.alloc.depart(now_ms(), t);
            self.carry_out(r).await;
        }
        let mut arrivals = Vec::new();
        for (t, pile, connector, id_tag, _) in &found {
            if self.sessions.contains_key(t) {
                continue;
            }
            arrivals.push(Arrival {
                pile: pile.clone(),
                connector: u32::try_from(*connector).unwrap_or(0),
                transaction: *t,
                group: self.terms.group_of(id_tag.as_deref()),
            });
            // Known before its first decision is recorded.
            self.sessions.insert(
                *t,
                SessionSeen {
                    pile: pile.clone(),
                    connector: *connector,
                    measured_at: None,
                    status: None,
                },
            );
        }
        if !arrivals.is_empty() {
            let (r, refused) = self.alloc.arrive_all(now_ms(), arrivals);
            for (t, e) in refused {
                tracing::debug!("site {}: {e}", self.id);
                self.sessions.remove(&t);
            }
            self.carry_out(r).await;
        }
        for (t, _, _, _, status) in found {
            let Some(seen) = self.sessions.get(&t) else {
                continue;
            };
            let last = seen.measured_at;
            let measured = repo
                .latest_meter_values(t, 5)
                .await?
                .into_iter()
                .find_map(|m| Some((m.time, current_import_a(&m.sampled)?)));
            let seen = self.sessions.get_mut(&t).expect("seen");
            let mut draw = None;
            if let Some((time, amps)) = measured {
                if last.is_none_or(|at| time > at) {
                    seen.measured_at = Some(time);
                    draw = Some(amps);
                }
            }
            if status != seen.status {
                if status.as_deref().is_some_and(|s| NOT_DRAWING.contains(&s)) {
                    draw = Some(0.0);
                }
                seen.status = status;
            }
            if let Some(amps) = draw {
                let r = self.alloc.measure(now_ms(), t, &[amps]);
                self.carry_out(r).await;
            }
        }
        Ok(())
    }

    /// Records the decisions and sends the limits (in the order given: lowerings first), each
    /// answer fed back.
    async fn carry_out(&mut self, r: Reaction) {
        let rows: Vec<AllocationRow> = r
            .decisions
            .iter()
            .filter_map(|d| {
                let s = self
                    .sessions
                    .get(&d.transaction)
                    .map(|s| (s.pile.clone(), s.connector));
                let (pile, connector) = s.or_else(|| {
                    r.commands
                        .iter()
                        .find(|c| c.transaction == d.transaction)
                        .map(|c| (c.pile.clone(), i64::from(c.connector)))
                })?;
                Some(AllocationRow {
                    site: self.id,
                    time: d.time,
                    pile,
                    connector,
                    transaction_id: d.transaction,
                    granted_a: d.granted_a,
                    queued: matches!(d.reason, super::Reason::Queued { .. }),
                    why: d.why(),
                })
            })
            .collect();
        if self.fenced_off {
            return;
        }
        match self
            .central
            .repo()
            .record_allocations(&rows, self.fence.as_ref())
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "site {}: its lease is held by another node; no longer run here",
                    self.id
                );
                self.fenced_off = true;
                return;
            }
            Err(e) => tracing::warn!("site {}: allocations not recorded: {e}", self.id),
        }
        for limit in r.commands {
            let payload = tx_profile(&limit).to_string();
            let central = self.central.clone();
            let answers = self.answers.clone();
            tokio::spawn(async move {
                let outcome = set_profile(&central, &limit.pile, payload).await;
                let _ = answers.send((limit.pile, limit.transaction, outcome));
            });
        }
    }

    /// Takes the site's profiles off a pile that left it (or whose site was removed), so that
    /// it is no longer held at the fail-safe. A pile offline then keeps them.
    fn release(&self, pile: &str, seen: &PileSeen) {
        if seen.connection.is_none() {
            tracing::info!(
                "site {}: {pile} left while offline: its profiles stay",
                self.id
            );
            return;
        }
        let central = self.central.clone();
        let pile = pile.to_owned();
        let payloads = clear_profiles(seen.limits.connectors);
        let fence = self.fence.clone();
        tokio::spawn(async move {
            if !holds(&central, fence.as_ref()).await {
                return;
            }
            for payload in payloads {
                let action = Action::ClearChargingProfile;
                match call_recorded(&central, &pile, action, payload.to_string()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::debug!("ClearChargingProfile to {pile}: {e}"),
                    Err(e) => tracing::warn!("ClearChargingProfile to {pile} not recorded: {e}"),
                }
            }
        });
    }

    /// Sends a pile the TxDefaultProfile at the fail-safe current: for all its connectors, or
    /// only the one on the site. A pile that takes no profile is not sent it.
    fn send_default(&self, pile: &str, connector: Option<i64>, limits: &PileLimits) {
        if limits.rate_units == RateUnits::Neither {
            return;
        }
        let payload = default_profile(
            connector.and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
            limits.max_stack_level,
            unit_of(limits),
            self.terms.failsafe_a,
            self.terms.phases,
        )
        .to_string();
        let central = self.central.clone();
        let (pile, id) = (pile.to_owned(), self.id);
        let fence = self.fence.clone();
        tokio::spawn(async move {
            if !holds(&central, fence.as_ref()).await {
                return;
            }
            let outcome = set_profile(&central, &pile, payload).await;
            if outcome != Outcome::Accepted {
                tracing::warn!("site {id}: {pile} did not take the fail-safe TxDefaultProfile");
            }
        });
    }
}

/// Whether the store shows this node holding the lease of `fence` (no fence: a node alone).
/// A command that no recorded decision fences goes only then.
async fn holds(central: &Central, fence: Option<&Fence>) -> bool {
    let Some(f) = fence else {
        return true;
    };
    match central.repo().lease_holder(&f.lease, At::Database).await {
        Ok(holder) if holder.as_deref() == Some(f.holder.as_str()) => true,
        Ok(_) => {
            tracing::warn!("{}: held by another node; nothing sent", f.lease);
            false
        }
        Err(e) => {
            tracing::warn!("{}: its holder not read ({e}); nothing sent", f.lease);
            false
        }
    }
}

/// Sends a SetChargingProfile (recorded like the API's commands); what became of it.
async fn set_profile(central: &Central, pile: &str, payload: String) -> Outcome {
    match call_recorded(central, pile, Action::SetChargingProfile, payload).await {
        Ok(Ok(answer)) => match answer.value {
            Response::SetChargingProfile(r) if r.status == ChargingProfileStatus::Accepted => {
                Outcome::Accepted
            }
            _ => Outcome::Rejected,
        },
        Ok(Err(DeliveryError::NotConnected | DeliveryError::Disconnected)) => Outcome::Lost,
        Ok(Err(e)) => {
            tracing::debug!("SetChargingProfile to {pile}: {e}");
            Outcome::Rejected
        }
        Err(e) => {
            tracing::warn!("SetChargingProfile to {pile} not recorded: {e}");
            Outcome::Rejected
        }
    }
}

/// A RemoteStartTransaction's payload for `pile`: when the pile is on a site and the payload
/// carries no chargingProfile, with a TxProfile at the site's fail-safe current (what the
/// allocator accounts a session at until its own limit comes, FAQ 3.15).
pub async fn remote_start_payload(
    central: &Central,
    pile: &str,
    payload: String,
) -> Result<String, StoreError> {
    let Some(member) = central.repo().site_of_pile(pile).await? else {
        return Ok(payload);
    };
    let Some(row) = central.repo().site(member.site).await? else {
        return Ok(payload);
    };
    let mut body: Value = serde_json::from_str(&payload)
        .map_err(|e| StoreError::Failed(format!("a decoded payload reads again: {e}")))?;
    if !body["chargingProfile"].is_null() {
        return Ok(payload);
    }
    let terms = Terms::from_row(&row).map_err(|e| StoreError::Failed(e.to_string()))?;
    let limits = limits_of(&central.repo().configuration(pile).await?);
    let connector = body["connectorId"]
        .as_u64()
        .and_then(|c| u32::try_from(c).ok());
    body["chargingProfile"] = remote_start_profile(
        connector,
        limits.max_stack_level,
        unit_of(&limits),
        terms.failsafe_a,
        terms.phases,
    );
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Vec<ConfigRow> {
        pairs
            .iter()
            .map(|(k, v)| ConfigRow {
                key: (*k).into(),
                value: Some((*v).into()),
                readonly: true,
                read_at: 0,
            })
            .collect()
    }

    #[test]
    fn the_allocator_hears_of_each_change_of_presence_once() {
        // (was online, rejoined, online now) -> told
        let table = [
            ((None, true, true), None),
            ((None, true, false), Some(false)),
            ((Some(true), false, true), None),
            ((Some(true), false, false), Some(false)),
            ((Some(false), false, false), None),
            ((Some(false), false, true), Some(true)),
            // New limits while offline: join_pile took it as online, so offline again.
            ((Some(false), true, false), Some(false)),
            ((Some(false), true, true), Some(true)),
            ((Some(true), true, false), Some(false)),
            ((Some(true), true, true), None),
        ];
        for ((was, rejoined, online), told) in table {
            assert_eq!(
                presence(was, rejoined, online),
                told,
                "{was:?} {rejoined} {online}"
            );
        }
    }

    #[test]
    fn a_piles_limits_come_from_its_configuration() {
        let limits = limits_of(&config(&[
            ("NumberOfConnectors", "2"),
            ("ChargeProfileMaxStackLevel", "5"),
            ("ChargingScheduleAllowedChargingRateUnit", "Power"),
            ("MaxChargingProfilesInstalled", "2"),
        ]));
        assert_eq!(
            (
                limits.connectors,
                limits.max_stack_level,
                limits.rate_units,
                limits.max_profiles
            ),
            (2, 5, RateUnits::Power, 2)
        );
        assert_eq!(unit_of(&limits), Unit::W);
        // Nothing read yet: one connector, the vendor's defaults.
        let none = limits_of(&[]);
        assert_eq!(
            (none.connectors, none.max_stack_level, none.max_profiles),
            (1, 8, 2)
        );
        assert_eq!(unit_of(&none), Unit::A);
    }
}
