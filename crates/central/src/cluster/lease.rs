//! Leases of the work that must run on one node at a time (each campaign, the message log's
//! retention, the reaping of silent nodes). [`Lease`] is this node's view of one lease, a state
//! machine without I/O (the time is given): taken for a `ttl`, renewed every `ttl / 3`, given
//! up, and lost when a renewal is refused, fails, or is answered after the expiry it asked
//! for. A node never acts on a lease whose expiry has passed by its own clock. [`Keeper`]
//! carries out a lease's attempts through the store (`leases` table), or holds it trivially
//! when the node runs alone. Which node holds a lease the store decides on the database's
//! clock (one clock for every node); a node's own clock only measures how long it may act on
//! what it was granted (from when it asked: never longer than the store grants it).

use std::sync::Arc;
use std::time::Duration;

use crate::store::{At, Millis, Repository, StoreError};

/// One attempt to take or renew a lease: when it was asked, and the expiry it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub asked_at: Millis,
    pub until: Millis,
}

/// What is due for a lease at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Held, and not time to renew yet.
    Nothing,
    /// Not held: try to take it.
    Take(Attempt),
    /// Held, a third of its time gone: renew it.
    Renew(Attempt),
}

/// What an answer did to the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Held now, and not before.
    Taken,
    /// Held before and still.
    Kept,
    /// Held before, not any more: the work stops here.
    Lost,
    /// Not held before nor now (another node holds it).
    Missed,
}

/// This node's view of one lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    name: String,
    ttl: Millis,
    /// Held until then (by this node's clock), renewed from `renew_at`.
    held: Option<Held>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    until: Millis,
    renew_at: Millis,
}

impl Lease {
    /// A lease not held yet, taken for `ttl` at a time.
    pub fn new(name: impl Into<String>, ttl: Duration) -> Lease {
        Lease {
            name: name.into(),
            ttl: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(3),
            held: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is held at `now`: taken, and its expiry not passed.
    pub fn is_held(&self, now: Millis) -> bool {
        self.held.is_some_and(|h| now < h.until)
    }

    /// The expiry of the lease held (by this node's clock).
    pub fn held_until(&self) -> Option<Millis> {
        self.held.map(|h| h.until)
    }

    /// What is due at `now`.
    pub fn due(&self, now: Millis) -> Due {
        let attempt = Attempt {
            asked_at: now,
            until: now.saturating_add(self.ttl),
        };
        match self.held {
            Some(h) if now < h.until && now < h.renew_at => Due::Nothing,
            Some(h) if now < h.until => Due::Renew(attempt),
            _ => Due::Take(attempt),
        }
    }

    /// The store's answer to `attempt` (`granted`: this node holds it until the attempt's
    /// expiry), received at `now`. An answer received at or after that expiry is too late: the
    /// lease is not held (another node may have it by then).
    pub fn answered(&mut self, attempt: Attempt, granted: bool, now: Millis) -> Change {
        // Held when it was asked: a granted renewal keeps it without a gap (no other node
        // can take a lease whose holder renews it).
        let before = self.is_held(attempt.asked_at);
        if granted && now < attempt.until {
            self.held = Some(Held {
                until: attempt.until,
                renew_at: attempt.asked_at + self.ttl / 3,
            });
            if before {
                Change::Kept
            } else {
                Change::Taken
            }
        } else {
            self.lapse_to(before)
        }
    }

    /// The store could not be asked, or did not answer: not held any more (nothing is done
    /// under a lease whose renewal is unknown).
    pub fn failed(&mut self) -> Change {
        let before = self.held.is_some();
        self.lapse_to(before)
    }

    /// Checks the expiry at `now`: true when the lease was taken and its expiry has passed
    /// without a renewal (it is lost).
    pub fn lapsed(&mut self, now: Millis) -> bool {
        match self.held {
            Some(h) if now >= h.until => {
                self.held = None;
                true
            }
            _ => false,
        }
    }

    /// Given up by this node.
    pub fn give_up(&mut self) {
        self.held = None;
    }

    fn lapse_to(&mut self, before: bool) -> Change {
        self.held = None;
        if before {
            Change::Lost
        } else {
            Change::Missed
        }
    }
}

/// The clock of a keeper (milliseconds since the Unix epoch).
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// Keeps one lease for one node: takes and renews it through the store when due; a node alone
/// holds it without asking anyone.
pub struct Keeper {
    lease: Lease,
    shared: Option<Shared>,
    clock: Clock,
    /// The store decides on this keeper's clock, not the database's (a test moving a clock).
    store_on_clock: bool,
}

struct Shared {
    store: Arc<dyn Repository>,
    holder: String,
}

impl Keeper {
    /// The lease of a node that runs alone: always held.
    pub fn alone(name: impl Into<String>, clock: Clock) -> Keeper {
        Keeper {
            lease: Lease::new(name, Duration::from_secs(1)),
            shared: None,
            clock,
            store_on_clock: false,
        }
    }

    /// The lease `name` in the store shared by the cluster's nodes, held by `holder` for `ttl`
    /// at a time (as the database's clock goes); `clock` is this node's.
    pub fn shared(
        name: impl Into<String>,
        holder: impl Into<String>,
        ttl: Duration,
        store: Arc<dyn Repository>,
        clock: Clock,
    ) -> Keeper {
        Keeper {
            lease: Lease::new(name, ttl),
            shared: Some(Shared {
                store,
                holder: holder.into(),
            }),
            clock,
            store_on_clock: false,
        }
    }

    /// The store decides on this keeper's clock too (a test that moves it).
    #[cfg(test)]
    fn store_on_its_clock(mut self) -> Keeper {
        self.store_on_clock = true;
        self
    }

    /// The lease `name` of this node: shared with the cluster's nodes when `node` (this
    /// node's name) is given, else held alone.
    pub fn of_node(
        name: impl Into<String>,
        node: Option<&str>,
        ttl: Duration,
        store: Arc<dyn Repository>,
    ) -> Keeper {
        match node {
            Some(node) => Keeper::shared(name, node, ttl, store, wall_clock()),
            None => Keeper::alone(name, wall_clock()),
        }
    }

    pub fn name(&self) -> &str {
        self.lease.name()
    }

    /// How often it must be kept: a third of its time (none alone: it never expires).
    pub fn renew_every(&self) -> Option<Duration> {
        self.shared
            .as_ref()
            .map(|_| Duration::from_millis(u64::try_from(self.lease.ttl / 3).unwrap_or(1).max(1)))
    }

    /// Whether this node holds the lease now.
    pub fn is_held(&self) -> bool {
        self.shared.is_none() || self.lease.is_held((self.clock)())
    }

    /// The expiry of the lease held (none alone: it never expires).
    pub fn held_until(&self) -> Option<Millis> {
        self.shared.as_ref().and(self.lease.held_until())
    }

    /// Takes or renews the lease if that is due; what became of it. A store error loses the
    /// lease (it is logged; the next call tries to take it again).
    pub async fn keep(&mut self) -> Change {
        let Some(shared) = &self.shared else {
            return Change::Kept;
        };
        let now = (self.clock)();
        if self.lease.lapsed(now) {
            // Not renewed in time: whatever it guarded may have moved to another node.
            return Change::Lost;
        }
        let attempt = match self.lease.due(now) {
            Due::Nothing => return Change::Kept,
            Due::Take(a) | Due::Renew(a) => a,
        };
        let at = if self.store_on_clock {
            At::Time(attempt.asked_at)
        } else {
            At::Database
        };
        let ttl = Duration::from_millis(u64::try_from(self.lease.ttl).unwrap_or(0));
        let answer = shared
            .store
            .take_lease(self.lease.name(), &shared.holder, ttl, at)
            .await;
        match answer {
            Ok(granted) => self.lease.answered(attempt, granted, (self.clock)()),
            Err(e) => {
                tracing::warn!("lease {}: not taken or renewed ({e})", self.lease.name());
                self.lease.failed()
            }
        }
    }

    /// Gives the lease up (in the store too, so that another node may take it at once).
    pub async fn give_up(&mut self) -> Result<(), StoreError> {
        self.lease.give_up();
        match &self.shared {
            Some(shared) => {
                shared
                    .store
                    .release_lease(self.lease.name(), &shared.holder)
                    .await
            }
            None => Ok(()),
        }
    }
}

/// Runs `job` every `every` on the one node that holds the lease of `keeper`, keeping the lease
/// meanwhile (a job that outlives it is dropped when the lease is lost); a node that takes the
/// lease runs the job at once. Never returns.
pub async fn run_leased<F, Fut, S>(mut keeper: Keeper, every: Duration, stopped: S, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
    S: Fn() -> bool,
{
    let check = keeper.renew_every().map_or(every, |r| r.min(every));
    let mut checks = tokio::time::interval(check);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_run: Option<tokio::time::Instant> = None;
    loop {
        checks.tick().await;
        // A node that stops takes no lease again (it gives up what it holds as it leaves).
        if stopped() {
            return;
        }
        match keeper.keep().await {
            Change::Taken => {
                tracing::info!("lease {}: taken, this node runs it", keeper.name());
                next_run = None;
            }
            Change::Lost => tracing::warn!("lease {}: lost, this node stops", keeper.name()),
            Change::Kept | Change::Missed => {}
        }
        let now = tokio::time::Instant::now();
        if !keeper.is_held() || next_run.is_some_and(|t| now < t) {
            continue;
        }
        next_run = Some(now + every);
        let run = job();
        tokio::pin!(run);
        loop {
            tokio::select! {
                () = &mut run => break,
                _ = checks.tick() => {
                    if keeper.keep().await == Change::Lost || !keeper.is_held() {
                        tracing::warn!("lease {}: lost while its job ran; stopped", keeper.name());
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Millis = 15_000;

    fn lease() -> Lease {
        Lease::new("campaign:1", Duration::from_millis(TTL as u64))
    }

    /// Asks at `now` and gets `granted` after `delay`.
    fn ask(l: &mut Lease, now: Millis, granted: bool, delay: Millis) -> Change {
        let attempt = match l.due(now) {
            Due::Take(a) | Due::Renew(a) => a,
            Due::Nothing => panic!("nothing due at {now}"),
        };
        assert_eq!(attempt.until, now + TTL);
        l.answered(attempt, granted, now + delay)
    }

    #[test]
    fn taken_held_for_the_ttl_and_renewed_every_third() {
        let mut l = lease();
        assert!(!l.is_held(0));
        assert!(matches!(l.due(0), Due::Take(_)));
        assert_eq!(ask(&mut l, 0, true, 10), Change::Taken);
        assert!(l.is_held(10));
        assert_eq!(l.held_until(), Some(TTL));
        assert_eq!(l.due(TTL / 3 - 1), Due::Nothing);
        assert!(matches!(l.due(TTL / 3), Due::Renew(_)));
        assert_eq!(ask(&mut l, TTL / 3, true, 10), Change::Kept);
        assert_eq!(l.held_until(), Some(TTL / 3 + TTL));
        // Renewed from the time it was asked, not answered.
        assert_eq!(l.due(2 * TTL / 3 - 1), Due::Nothing);
        assert!(matches!(l.due(2 * TTL / 3), Due::Renew(_)));
    }

    #[test]
    fn held_by_another_node_it_is_not_taken() {
        let mut l = lease();
        assert_eq!(ask(&mut l, 0, false, 5), Change::Missed);
        assert!(!l.is_held(5));
        assert!(matches!(l.due(1_000), Due::Take(_)));
    }

    #[test]
    fn a_refused_renewal_loses_it_at_once() {
        let mut l = lease();
        ask(&mut l, 0, true, 5);
        assert_eq!(ask(&mut l, TTL / 3, false, 5), Change::Lost);
        // Though the earlier expiry has not passed, it is not acted on.
        assert!(!l.is_held(TTL / 3 + 10));
    }

    #[test]
    fn a_failed_renewal_loses_it() {
        let mut l = lease();
        ask(&mut l, 0, true, 5);
        assert_eq!(l.failed(), Change::Lost);
        assert!(!l.is_held(TTL / 3 + 100));
        assert_eq!(l.failed(), Change::Missed);
    }

    #[test]
    fn a_grant_answered_after_its_expiry_is_too_late() {
        let mut l = lease();
        ask(&mut l, 0, true, 5);
        // The renewal asked at TTL/3 is answered only at its own expiry.
        assert_eq!(ask(&mut l, TTL / 3, true, TTL), Change::Lost);
        assert!(!l.is_held(TTL / 3 + TTL));
        // A first take answered too late is no take either.
        let mut l = lease();
        assert_eq!(ask(&mut l, 0, true, TTL), Change::Missed);
        assert!(!l.is_held(TTL));
    }

    #[test]
    fn never_held_past_its_expiry_by_this_clock() {
        let mut l = lease();
        ask(&mut l, 0, true, 5);
        // No renewal came (the node stalled): at its expiry the lease is gone.
        assert!(l.is_held(TTL - 1));
        assert!(!l.is_held(TTL));
        assert!(!l.lapsed(TTL - 1));
        assert!(l.lapsed(TTL));
        assert!(!l.lapsed(TTL + 1), "lapses once");
        assert!(matches!(l.due(TTL), Due::Take(_)));
    }

    #[test]
    fn given_up_it_is_taken_again_only_by_asking() {
        let mut l = lease();
        ask(&mut l, 0, true, 5);
        l.give_up();
        assert!(!l.is_held(10));
        assert!(matches!(l.due(10), Due::Take(_)));
        assert_eq!(ask(&mut l, 10, true, 5), Change::Taken);
    }

    mod keeper {
        use std::sync::atomic::{AtomicI64, Ordering};

        use super::super::*;

        struct World {
            time: Arc<AtomicI64>,
            store: Arc<dyn Repository>,
        }

        impl World {
            async fn new(test: &str) -> World {
                let dir = std::env::temp_dir()
                    .join(format!("ocpile-lease-{test}-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite://{}", dir.join("central.db").display());
                World {
                    time: Arc::new(AtomicI64::new(1_000_000)),
                    store: crate::store::open(&url).await.unwrap(),
                }
            }

            fn keeper(&self, node: &str) -> Keeper {
                let time = self.time.clone();
                Keeper::shared(
                    "node-reaper",
                    node,
                    Duration::from_secs(15),
                    self.store.clone(),
                    Arc::new(move || time.load(Ordering::SeqCst)),
                )
                .store_on_its_clock()
            }

            fn advance(&self, ms: Millis) {
                self.time.fetch_add(ms, Ordering::SeqCst);
            }

            async fn holder(&self) -> Option<String> {
                let now = self.time.load(Ordering::SeqCst);
                self.store
                    .lease_holder("node-reaper", At::Time(now))
                    .await
                    .unwrap()
            }
        }

        #[tokio::test]
        async fn one_node_holds_it_the_other_takes_it_once_it_expires() {
            let w = World::new("takeover").await;
            let (mut a, mut b) = (w.keeper("A"), w.keeper("B"));
            assert_eq!(a.keep().await, Change::Taken);
            assert_eq!(b.keep().await, Change::Missed);
            assert!(a.is_held() && !b.is_held());
            assert_eq!(w.holder().await.as_deref(), Some("A"));
            // A renews every third of the TTL; B never gets it meanwhile.
            for _ in 0..6 {
                w.advance(5_000);
                assert_eq!(a.keep().await, Change::Kept);
                assert_eq!(b.keep().await, Change::Missed);
            }
            // A stalls: at its expiry A stops acting on it by its own clock, and B takes it.
            w.advance(14_999);
            assert!(a.is_held());
            w.advance(1);
            assert!(!a.is_held());
            // The store lets it go only after its expiry: no instant when both act on it.
            assert_eq!(b.keep().await, Change::Missed);
            w.advance(1);
            assert_eq!(b.keep().await, Change::Taken);
            assert_eq!(w.holder().await.as_deref(), Some("B"));
            // A comes back too late: lost, and not taken again while B renews.
            assert_eq!(a.keep().await, Change::Lost);
            assert_eq!(a.keep().await, Change::Missed);
            assert!(!a.is_held() && b.is_held());
        }

        #[tokio::test]
        async fn given_up_another_node_takes_it_at_once() {
            let w = World::new("give-up").await;
            let (mut a, mut b) = (w.keeper("A"), w.keeper("B"));
            assert_eq!(a.keep().await, Change::Taken);
            a.give_up().await.unwrap();
            assert!(!a.is_held());
            assert_eq!(w.holder().await, None);
            assert_eq!(b.keep().await, Change::Taken);
        }

        /// Two nodes on the database's clock, B's own clock an hour ahead: B does not take
        /// the lease A holds (by its clock, A's expiry has long passed).
        #[tokio::test]
        async fn a_node_whose_clock_runs_ahead_takes_no_lease_still_held() {
            let w = World::new("skew").await;
            let ttl = Duration::from_secs(15);
            let mut a = Keeper::shared("node-reaper", "A", ttl, w.store.clone(), wall_clock());
            let ahead: Clock = Arc::new(|| chrono::Utc::now().timestamp_millis() + 3_600_000);
            let mut b = Keeper::shared("node-reaper", "B", ttl, w.store.clone(), ahead);
            assert_eq!(a.keep().await, Change::Taken);
            assert_eq!(b.keep().await, Change::Missed);
            assert!(a.is_held() && !b.is_held());
            let holder = w.store.lease_holder("node-reaper", At::Database).await;
            assert_eq!(holder.unwrap().as_deref(), Some("A"));
        }

        #[tokio::test]
        async fn alone_it_is_held_without_asking() {
            let w = World::new("alone").await;
            let time = w.time.clone();
            let mut k = Keeper::alone(
                "log-retention",
                Arc::new(move || time.load(Ordering::SeqCst)),
            );
            assert_eq!(k.keep().await, Change::Kept);
            w.advance(1_000_000);
            assert!(k.is_held());
            assert_eq!(w.holder().await, None, "nothing written");
        }
    }
}
