//! Runs the campaigns: a tick every second, the piles' notifications and boots fed in as the
//! handler answers them (or as another node tells them), the commands sent (and recorded like
//! the API's), every change of a pile's upgrade written to the store in order, and each
//! command sent only once the write of the state that issued it is committed: a campaign taken
//! up from the store never sends again what was sent before.
//!
//! Each campaign runs on one node at a time, the holder of its lease `campaign:{id}`: the node
//! whose API created it takes it; every tick, every node takes up the running campaigns that
//! nobody holds, from their stored state, and drops one from memory the moment its lease is
//! lost. A node alone holds every lease and takes up the running campaigns when it starts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ocpp::FirmwareStatus;
use tokio::sync::mpsc;

use super::events::{self, Event};
pub use super::stored::{from_rows, is_running, rollout_row, stored_state};
use super::{Answer, Campaign, Facts, Kind, Millis, Order, Phase, State};
use crate::cluster::lease::{Change, Keeper};
use crate::store::{At, CampaignRow, Fence, PileRow, Repository, StoreError, WriteOp, WriteResult};
use crate::{Central, StartError};

mod signed;
use signed::apply_signed_notification;
pub use signed::signed_notified;

/// How often the campaigns' clocks move (and a node looks for campaigns nobody runs).
const TICK: Duration = Duration::from_secs(1);

fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// The lease of a campaign.
pub fn lease_name(id: i64) -> String {
    format!("campaign:{id}")
}

/// What goes to the store's writer, in order, and what waits behind those writes.
enum Save {
    /// A change of a campaign: of one pile's upgrade, or (no pile) of its state.
    Write {
        campaign: i64,
        pile: Option<String>,
        op: WriteOp,
    },
    /// A command, sent once the writes queued before it are committed.
    Order { campaign: i64, order: Order },
    /// The campaign is over: dropped from memory and its lease given up, once its last
    /// changes are stored.
    Over { campaign: i64 },
}

/// The campaigns this node runs, in memory, and the order in which their changes reach the
/// store.
pub struct Campaigns {
    live: Mutex<Live>,
    /// The leases of the campaigns run here; held while campaigns are taken up or let go.
    leases: tokio::sync::Mutex<BTreeMap<i64, Keeper>>,
    saves: mpsc::UnboundedSender<Save>,
    /// Events for the other nodes (in a cluster), waiting for NATS.
    events: Arc<events::Backlog>,
    repo: Arc<dyn Repository>,
    /// This node's name.
    node: String,
    /// Whether it shares the campaigns with other nodes.
    shared: bool,
    ttl: Duration,
}

/// The queues [`start`] serves: the writes and commands in order, the events to publish.
pub struct Queues {
    saves: mpsc::UnboundedReceiver<Save>,
    events: Arc<events::Backlog>,
}

#[derive(Default)]
struct Live {
    campaigns: BTreeMap<i64, Run>,
    /// What was last written of each rollout and campaign, to write only changes.
    saved: HashMap<(i64, String), String>,
    saved_state: HashMap<i64, String>,
    /// The firmware version of each pile in a campaign, as its last boot reported it.
    versions: HashMap<String, Option<String>>,
    /// The boots of piles that were rebooting into their image while no node ran their
    /// campaign (their news went nowhere), found in the store when it was taken up: fed to
    /// the campaign at the next tick.
    missed_boots: Vec<(String, Option<String>)>,
}

/// A campaign run here.
struct Run {
    campaign: Campaign,
    /// Until when its lease is held, by this node's clock (none alone: for good).
    until: Option<Millis>,
}

impl Run {
    /// Whether it may act at `now`: never on a lease whose expiry has passed.
    fn usable(&self, now: Millis) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// A campaign read from the store, to be taken up.
struct Loaded {
    campaign: Campaign,
    versions: HashMap<String, Option<String>>,
    /// The piles that booted while it had no node.
    missed_boots: Vec<(String, Option<String>)>,
}

impl Live {
    /// Queues the writes of what changed in a campaign since it was last saved, each fenced by
    /// `fence` (the campaign's lease, in a cluster).
    fn changes(&mut self, id: i64, fence: Option<Fence>, saves: &mpsc::UnboundedSender<Save>) {
        let Some(run) = self.campaigns.get(&id) else {
            return;
        };
        let c = &run.campaign;
        for (i, r) in c.rollouts.iter().enumerate() {
            let row = rollout_row(id, i, r);
            let key = (id, r.pile.clone());
            if self.saved.get(&key) != Some(&row.state) {
                self.saved.insert(key, row.state.clone());
                let _ = saves.send(Save::Write {
                    campaign: id,
                    pile: Some(r.pile.clone()),
                    op: WriteOp::PutRollout {
                        row,
                        fence: fence.clone(),
                    },
                });
            }
        }
        let state = stored_state(c);
        // A campaign is created `running` and never goes back to it: that state is not
        // written again (so that a cancel recorded by another node is never overwritten).
        if state != State::Running.as_str() && self.saved_state.get(&id) != Some(&state) {
            self.saved_state.insert(id, state.clone());
            let _ = saves.send(Save::Write {
                campaign: id,
                pile: None,
                op: WriteOp::CampaignState {
                    id,
                    state,
                    finished_at: c.finished_at,
                    fence,
                },
            });
            if c.finished_at.is_some() {
                let _ = saves.send(Save::Over { campaign: id });
            }
        }
    }

    /// Drops a campaign from memory.
    fn forget(&mut self, id: i64) {
        self.campaigns.remove(&id);
        self.saved.retain(|(c, _), _| *c != id);
        self.saved_state.remove(&id);
        let piles: HashSet<&str> = self
            .campaigns
            .values()
            .flat_map(|r| r.campaign.rollouts.iter().map(|r| r.pile.as_str()))
            .collect();
        self.versions.retain(|p, _| piles.contains(p.as_str()));
    }
}

impl Campaigns {
    /// No campaign yet: [`start`] takes up those the store has as running. `node` is this
    /// node's name; `shared`: it runs in a cluster, whose nodes hold the campaigns' leases for
    /// `ttl` at a time.
    pub fn new(
        repo: Arc<dyn Repository>,
        node: String,
        shared: bool,
        ttl: Duration,
    ) -> (Campaigns, Queues) {
        let (saves, saves_rx) = mpsc::unbounded_channel();
        let events = Arc::new(events::Backlog::new(events::BACKLOG));
        (
            Campaigns {
                live: Mutex::new(Live::default()),
                leases: tokio::sync::Mutex::new(BTreeMap::new()),
                saves,
                events: events.clone(),
                repo,
                node,
                shared,
                ttl,
            },
            Queues {
                saves: saves_rx,
                events,
            },
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().expect("campaigns lock")
    }

    fn keeper(&self, id: i64) -> Keeper {
        Keeper::of_node(
            lease_name(id),
            self.shared.then_some(self.node.as_str()),
            self.ttl,
            self.repo.clone(),
        )
    }

    /// In a cluster, what a campaign's writes depend on: this node holding its lease.
    fn fence(&self, id: i64) -> Option<Fence> {
        self.shared.then(|| Fence {
            lease: lease_name(id),
            holder: self.node.clone(),
        })
    }

    /// A campaign whose write found its lease held by another node (this one lost it without
    /// noticing, say paused): no longer run here, nothing more written or sent.
    async fn fenced_off(&self, id: i64) {
        self.leases.lock().await.remove(&id);
        self.lock().forget(id);
        tracing::warn!("campaign {id}: its lease is held by another node; no longer run here");
    }

    /// A campaign run here, as it is now.
    pub fn get(&self, id: i64) -> Option<Campaign> {
        self.lock().campaigns.get(&id).map(|r| r.campaign.clone())
    }

    /// Whether the campaign runs here and its lease holds at `now`.
    fn runs(&self, id: i64, now: Millis) -> bool {
        self.lock()
            .campaigns
            .get(&id)
            .is_some_and(|r| r.usable(now))
    }

    /// In a cluster, the node that runs a campaign: this one, or the holder of its lease; none
    /// when no node runs it (it is over, or between nodes), and alone.
    pub async fn node_of(&self, id: i64) -> Result<Option<String>, StoreError> {
        if !self.shared {
            return Ok(None);
        }
        if self.runs(id, now_ms()) {
            return Ok(Some(self.node.clone()));
        }
        self.repo.lease_holder(&lease_name(id), At::Database).await
    }

    /// (Whether a campaign is in memory, whether one of its piles has not started yet.)
    fn activity(&self) -> (bool, bool) {
        let live = self.lock();
        (
            !live.campaigns.is_empty(),
            live.campaigns.values().any(|r| {
                r.campaign.finished_at.is_none()
                    && r.campaign
                        .rollouts
                        .iter()
                        .any(|r| r.phase == Phase::Waiting)
            }),
        )
    }

    /// The running campaign run here that a pile is in, if any.
    pub fn holding(&self, pile: &str) -> Option<i64> {
        self.lock()
            .campaigns
            .values()
            .find(|r| r.campaign.holds(pile))
            .map(|r| r.campaign.id)
    }

    /// The piles in a running campaign and the campaign each is in: from memory for the
    /// campaigns run here, from the store for the others.
    pub async fn busy_piles(&self) -> Result<HashMap<String, i64>, StoreError> {
        let mut busy = HashMap::new();
        let here: HashSet<i64> = self.lock().campaigns.keys().copied().collect();
        for row in self.repo.campaigns().await? {
            if !is_running(&row) || here.contains(&row.id) {
                continue;
            }
            for r in self.repo.rollouts(row.id).await? {
                if r.phase != Phase::Done.as_str() {
                    busy.insert(r.pile, row.id);
                }
            }
        }
        for run in self.lock().campaigns.values() {
            for r in run.campaign.rollouts.iter().filter(|r| !r.is_done()) {
                busy.insert(r.pile.clone(), run.campaign.id);
            }
        }
        Ok(busy)
    }

    /// Runs a campaign the store has just recorded: this node takes its lease (if it cannot,
    /// another node takes it up).
    pub async fn add(&self, campaign: Campaign, versions: HashMap<String, Option<String>>) {
        let mut leases = self.leases.lock().await;
        if leases.contains_key(&campaign.id) {
            // Taken up from the store already, by a tick.
            return;
        }
        let mut keeper = self.keeper(campaign.id);
        if !matches!(keeper.keep().await, Change::Taken | Change::Kept) {
            tracing::warn!(
                "campaign {}: its lease could not be taken here; another node takes it up",
                campaign.id
            );
            return;
        }
        let until = keeper.held_until();
        leases.insert(campaign.id, keeper);
        let mut live = self.lock();
        for (i, r) in campaign.rollouts.iter().enumerate() {
            let row = rollout_row(campaign.id, i, r);
            live.saved.insert((campaign.id, r.pile.clone()), row.state);
        }
        live.saved_state
            .insert(campaign.id, State::Running.as_str().into());
        live.versions.extend(versions);
        live.campaigns.insert(campaign.id, Run { campaign, until });
    }

    /// Cancels a campaign run here; false when it is not run here or not running.
    pub fn cancel(&self, id: i64) -> bool {
        let now = now_ms();
        let mut live = self.lock();
        match live.campaigns.get_mut(&id) {
            Some(r) if r.usable(now) && r.campaign.finished_at.is_none() => r.campaign.cancel(),
            _ => return false,
        }
        live.changes(id, self.fence(id), &self.saves);
        true
    }

    /// Hands an event to the other nodes (alone: nobody).
    fn tell(&self, event: Event) {
        if self.shared {
            self.events.push(event);
        }
    }

    /// Applies `f` to every campaign run here and not finished, and queues the writes of what
    /// changed, each campaign's orders behind its writes.
    fn each(
        &self,
        mut f: impl FnMut(&mut Campaign, &HashMap<String, Option<String>>) -> Vec<Order>,
    ) {
        let now = now_ms();
        let mut live = self.lock();
        let ids: Vec<i64> = live
            .campaigns
            .iter()
            .filter(|(_, r)| r.usable(now))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Live {
                campaigns,
                versions,
                ..
            } = &mut *live;
            let Some(run) = campaigns.get_mut(&id) else {
                continue;
            };
            let orders = if run.campaign.finished_at.is_none() {
                f(&mut run.campaign, versions)
            } else {
                Vec::new()
            };
            live.changes(id, self.fence(id), &self.saves);
            for order in orders {
                let _ = self.saves.send(Save::Order {
                    campaign: id,
                    order,
                });
            }
        }
    }

    /// A write that failed: what it wrote is written again at the campaign's next tick.
    fn unsaved(&self, campaign: i64, pile: Option<&str>) {
        let mut live = self.lock();
        match pile {
            Some(pile) => {
                live.saved.remove(&(campaign, pile.to_owned()));
            }
            None => {
                live.saved_state.remove(&campaign);
            }
        }
    }

    /// Reads a campaign from the store as it was left, to be taken up: its piles' upgrades, and
    /// the piles' versions and boots in one query (no lock is held meanwhile).
    async fn load(&self, row: &CampaignRow) -> Result<Loaded, StoreError> {
        let rows = self.repo.rollouts(row.id).await?;
        let mut campaign = from_rows(row, &rows)?;
        campaign.resume(now_ms());
        let ids: Vec<String> = campaign.rollouts.iter().map(|r| r.pile.clone()).collect();
        let piles: HashMap<String, PileRow> = self
            .repo
            .piles_of(&ids)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut versions = HashMap::new();
        let mut missed_boots = Vec::new();
        for r in &campaign.rollouts {
            if let Some(p) = piles.get(&r.pile) {
                if r.phase == super::Phase::Rebooting
                    && p.last_boot.is_some_and(|boot| boot > r.phase_since())
                {
                    missed_boots.push((r.pile.clone(), p.firmware_version.clone()));
                }
                versions.insert(r.pile.clone(), p.firmware_version.clone());
            }
        }
        Ok(Loaded {
            campaign,
            versions,
            missed_boots,
        })
    }

    /// Runs a campaign read from the store, its lease held until `until`.
    fn install(&self, row: &CampaignRow, loaded: Loaded, until: Option<Millis>) {
        let Loaded {
            campaign,
            versions,
            missed_boots,
        } = loaded;
        let mut live = self.lock();
        live.saved_state.insert(row.id, row.state.clone());
        for r in &campaign.rollouts {
            // Written again at its first change: the state it resumed in.
            live.saved.insert((row.id, r.pile.clone()), String::new());
        }
        live.versions.extend(versions);
        live.missed_boots.extend(missed_boots);
        live.campaigns.insert(row.id, Run { campaign, until });
    }

    /// Renews the leases of the campaigns run here and drops those lost.
    async fn keep_leases(&self) {
        let mut leases = self.leases.lock().await;
        let mut lost = Vec::new();
        for (id, keeper) in leases.iter_mut() {
            match keeper.keep().await {
                Change::Kept | Change::Taken => {
                    if let Some(run) = self.lock().campaigns.get_mut(id) {
                        run.until = keeper.held_until();
                    }
                }
                Change::Lost | Change::Missed => lost.push(*id),
            }
        }
        for id in lost {
            leases.remove(&id);
            self.lock().forget(id);
            tracing::warn!("campaign {id}: its lease is lost; no longer run on this node");
        }
    }

    /// Renews the leases of the campaigns run here and drops those lost; with `take_free`,
    /// takes up the running campaigns of the store that no node holds. A campaign is read from
    /// the store without the leases' lock, which is taken again only to put it in memory.
    async fn keep_and_take(&self, take_free: bool) {
        self.keep_leases().await;
        if !take_free {
            return;
        }
        let rows = match self.repo.campaigns().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!("campaigns: the running ones unknown ({e})");
                return;
            }
        };
        for row in rows.iter().filter(|r| is_running(r)) {
            if self.leases.lock().await.contains_key(&row.id) {
                if row.state == "cancelling" {
                    // A cancel recorded by another node, in case its word did not come.
                    self.cancel(row.id);
                }
                continue;
            }
            if self.shared {
                match self
                    .repo
                    .lease_holder(&lease_name(row.id), At::Database)
                    .await
                {
                    Ok(None) => {}
                    Ok(Some(_)) => continue,
                    Err(e) => {
                        tracing::warn!("campaign {}: its lease unknown ({e})", row.id);
                        continue;
                    }
                }
            }
            let mut keeper = self.keeper(row.id);
            if !matches!(keeper.keep().await, Change::Taken | Change::Kept) {
                continue;
            }
            let loaded = match self.load(row).await {
                Ok(loaded) => loaded,
                Err(e) => {
                    tracing::warn!("campaign {}: not taken up ({e})", row.id);
                    if let Err(e) = keeper.give_up().await {
                        tracing::warn!("campaign {}: its lease not given up ({e})", row.id);
                    }
                    continue;
                }
            };
            let mut leases = self.leases.lock().await;
            if leases.contains_key(&row.id) {
                // Added by this node's API meanwhile, under the same lease: it runs already.
                continue;
            }
            self.install(row, loaded, keeper.held_until());
            leases.insert(row.id, keeper);
            tracing::info!("campaign {}: taken up on node {}", row.id, self.node);
        }
    }

    /// A campaign over, its last changes stored: dropped from memory, its lease given up.
    async fn let_go(&self, id: i64) {
        let mut leases = self.leases.lock().await;
        if let Some(mut keeper) = leases.remove(&id) {
            if let Err(e) = keeper.give_up().await {
                tracing::warn!("campaign {id}: its lease not given up ({e}); it expires");
            }
        }
        self.lock().forget(id);
    }
}

/// A pile's FirmwareStatusNotification, for the campaigns run here.
fn apply_notification(central: &Central, pile: &str, status: FirmwareStatus) {
    let now = now_ms();
    central
        .campaigns()
        .each(|c, _| c.on_notification(pile, status.clone(), now));
}

/// A pile's BootNotification, for the campaigns run here.
fn apply_boot(central: &Central, pile: &str, version: Option<&str>) {
    let now = now_ms();
    {
        let mut live = central.campaigns().lock();
        if live.versions.contains_key(pile) {
            live.versions
                .insert(pile.to_owned(), version.map(str::to_owned));
        }
    }
    central
        .campaigns()
        .each(|c, _| c.on_boot(pile, version, now));
}

/// What the handler calls once it has answered a FirmwareStatusNotification: applied here,
/// and told to the other nodes unless the pile's campaign runs here.
pub fn notified(central: &Arc<Central>, pile: &str, status: FirmwareStatus) {
    let here = central.campaigns().holding(pile).is_some();
    apply_notification(central, pile, status.clone());
    if !here {
        central.campaigns().tell(Event::FirmwareStatus {
            pile: pile.to_owned(),
            status,
        });
    }
}

/// What the handler calls once it has answered a BootNotification: applied here, and told to
/// the other nodes unless the pile's campaign runs here.
pub fn booted(central: &Arc<Central>, pile: &str, version: Option<&str>) {
    let here = central.campaigns().holding(pile).is_some();
    apply_boot(central, pile, version);
    if !here {
        central.campaigns().tell(Event::Boot {
            pile: pile.to_owned(),
            version: version.map(str::to_owned),
        });
    }
}

/// Tells the node that runs the campaign that a cancel was recorded for it in the store.
pub fn cancel_recorded(central: &Central, campaign: i64) {
    central.campaigns().tell(Event::Cancel { campaign });
}

/// Another node's event.
fn apply(central: &Central, event: Event) {
    match event {
        Event::FirmwareStatus { pile, status } => apply_notification(central, &pile, status),
        Event::SignedFirmwareStatus {
            pile,
            status,
            request_id,
        } => apply_signed_notification(central, &pile, &status, request_id),
        Event::Boot { pile, version } => apply_boot(central, &pile, version.as_deref()),
        Event::Cancel { campaign } => {
            if central.campaigns().cancel(campaign) {
                tracing::info!("campaign {campaign}: cancelled through another node");
            }
        }
    }
}

/// Takes up the running campaigns nobody holds (alone: all of them), then runs the campaigns:
/// the writer of their changes, their clock, and in a cluster their events.
pub async fn start(central: &Arc<Central>, queues: Queues) -> Result<(), StartError> {
    signed::keep_signer_of_options(central).await?;
    central.campaigns().keep_and_take(true).await;
    let Queues { saves, events } = queues;
    if let Some(cluster) = central.cluster() {
        let mut subscription = cluster
            .nats()
            .subscribe(events::subject(cluster))
            .await
            .map_err(|e| crate::cluster::ClusterError::Nats(e.to_string()))?;
        let publisher = central.clone();
        tokio::spawn(async move {
            if let Some(cluster) = publisher.cluster() {
                events::publish(cluster, &events).await;
            }
        });
        let receiver = central.clone();
        tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(message) = subscription.next().await {
                if let Some(event) = events::read(receiver.node(), &message.payload) {
                    apply(&receiver, event);
                }
            }
        });
    }
    spawn_saver(central.clone(), saves);
    spawn_ticker(central.clone());
    Ok(())
}

/// Writes the campaigns' changes in the order they were made, and sends each command once the
/// writes before it are committed.
fn spawn_saver(central: Arc<Central>, mut rx: mpsc::UnboundedReceiver<Save>) {
    tokio::spawn(async move {
        // The changes whose last write failed (campaign, pile; no pile: its state).
        let mut unstored: HashSet<(i64, Option<String>)> = HashSet::new();
        while let Some(save) = rx.recv().await {
            let campaigns = central.campaigns();
            match save {
                Save::Write { campaign, pile, op } => {
                    if !campaigns.runs(campaign, now_ms()) {
                        // Its lease is lost: the node that holds it now writes it.
                        unstored.retain(|(c, _)| *c != campaign);
                        continue;
                    }
                    let what = match &pile {
                        Some(p) => format!("campaign {campaign} pile {p}"),
                        None => format!("campaign {campaign}"),
                    };
                    match central.writer().write(op).await {
                        Ok(WriteResult::Affected(0)) => {
                            // Its fence: the lease has passed to another node.
                            tracing::warn!("{what}: not written, under a lease lost");
                            unstored.retain(|(c, _)| *c != campaign);
                            campaigns.fenced_off(campaign).await;
                        }
                        Ok(_) => {
                            unstored.remove(&(campaign, pile));
                            central.changed(what);
                        }
                        Err(e) => {
                            tracing::error!("{what}: a change not stored ({e}); written again");
                            campaigns.unsaved(campaign, pile.as_deref());
                            unstored.insert((campaign, pile));
                        }
                    }
                }
                Save::Order { campaign, order } => {
                    if !campaigns.runs(campaign, now_ms()) {
                        continue;
                    }
                    if unstored.contains(&(campaign, Some(order.pile.clone()))) {
                        // The state that issued it is not stored: not sent, as if it got no
                        // answer (it goes again once the pile's state is stored).
                        answered(
                            &central,
                            campaign,
                            &order.pile,
                            order.command.kind(),
                            Answer::Lost,
                        );
                        continue;
                    }
                    send(&central, campaign, order);
                }
                Save::Over { campaign } => {
                    if unstored.iter().any(|(c, _)| *c == campaign) {
                        continue;
                    }
                    campaigns.let_go(campaign).await;
                    tracing::info!("campaign {campaign}: over");
                }
            }
        }
    });
}

/// Sends an order in a task of its own and feeds its answer back.
fn send(central: &Arc<Central>, campaign: i64, order: Order) {
    let central = central.clone();
    tokio::spawn(async move {
        let kind = order.command.kind();
        let answer = super::orders::execute(&central, &order.pile, &order.command).await;
        answered(&central, campaign, &order.pile, kind, answer);
    });
}

fn answered(central: &Central, campaign: i64, pile: &str, kind: Kind, answer: Answer) {
    let now = now_ms();
    central.campaigns().each(|c, _| {
        if c.id == campaign {
            c.on_answer(pile, kind, answer.clone(), now);
        }
        Vec::new()
    });
}

/// Moves the campaigns' clocks every second (their leases kept, and in a cluster the
/// campaigns nobody runs taken up).
fn spawn_ticker(central: Arc<Central>) {
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
    // A node that stops takes up no campaign and renews none (it gives them up as it leaves).
    if central.health().is_draining() {
        return;
    }
    let campaigns = central.campaigns();
    campaigns.keep_and_take(campaigns.shared).await;
    let missed = std::mem::take(&mut campaigns.lock().missed_boots);
    for (pile, version) in missed {
        tracing::info!(
            pile,
            "booted while its campaign had no node: its boot is applied now"
        );
        apply_boot(central, &pile, version.as_deref());
    }
    let (any, waiting) = campaigns.activity();
    if !any {
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
    campaigns.each(|c, versions| {
        c.tick(
            |pile| Facts {
                connected: online.contains(pile),
                charging: charging.contains(pile),
                firmware_version: versions.get(pile).cloned().flatten(),
            },
            now,
        )
    });
}
