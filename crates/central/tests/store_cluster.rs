//! What the nodes share in the store, on SQLite and PostgreSQL: nodes heard from and reaped
//! with the presence of their piles, leases taken, renewed, refused and passed on, settings
//! that the first writer fixes.

mod common;

use std::time::Duration;

use central::store::{At, CampaignCreated, Fence, Repository, RolloutRow, WriteOp, WriteResult};
use sqlx::Connection;

/// The leases' time to live in these tests.
const TTL: Duration = Duration::from_secs(15);

async fn write(repo: &dyn Repository, ops: Vec<WriteOp>, now: i64) {
    repo.apply(&ops, now).await.expect("the writes apply");
}

fn connected(pile: &str, node: &str, connection: i64) -> WriteOp {
    WriteOp::Connected {
        pile: pile.into(),
        node: node.into(),
        connection,
    }
}

#[tokio::test]
async fn nodes_are_heard_from_and_the_silent_ones_reaped_with_their_piles() {
    for (kind, repo) in common::repositories("cluster", "nodes").await {
        let mut ops = Vec::new();
        for pile in ["P1", "P2", "P3"] {
            ops.push(WriteOp::AdmitPile {
                id: pile.into(),
                registration: "Accepted".into(),
            });
        }
        ops.push(connected("P1", "a", 1));
        ops.push(connected("P2", "a", 2));
        ops.push(connected("P3", "b", 1));
        write(&*repo, ops, 1_000).await;
        assert!(
            !repo.heartbeat("a", "h:1", At::Time(1_000)).await.unwrap(),
            "{kind}: new"
        );
        assert!(
            !repo.heartbeat("b", "h:2", At::Time(1_000)).await.unwrap(),
            "{kind}: new"
        );
        assert!(
            repo.heartbeat("a", "h:1", At::Time(20_000)).await.unwrap(),
            "{kind}: known"
        );
        let nodes = repo.nodes().await.unwrap();
        let seen: Vec<(&str, i64, i64)> = nodes
            .iter()
            .map(|n| (n.name.as_str(), n.heard_at, n.piles))
            .collect();
        assert_eq!(seen, [("a", 20_000, 2), ("b", 1_000, 1)], "{kind}");
        let p1 = repo.pile("P1").await.unwrap().unwrap();
        assert_eq!(
            (p1.node.as_deref(), p1.connection, p1.connected_at),
            (Some("a"), Some(1), Some(1_000)),
            "{kind}"
        );

        // b is silent past the TTL: gone, and its pile offline; a's stay.
        assert_eq!(
            repo.reap_nodes(Duration::ZERO, At::Time(10_000))
                .await
                .unwrap(),
            ["b"],
            "{kind}"
        );
        let p3 = repo.pile("P3").await.unwrap().unwrap();
        assert_eq!((p3.node, p3.connection), (None, None), "{kind}");
        assert_eq!(
            repo.pile("P2").await.unwrap().unwrap().node.as_deref(),
            Some("a"),
            "{kind}"
        );
        // b speaks again: it learns that it was reaped.
        assert!(
            !repo.heartbeat("b", "h:2", At::Time(21_000)).await.unwrap(),
            "{kind}"
        );

        // An older connection's end on another node leaves the pile where it is now.
        write(&*repo, vec![connected("P2", "b", 9)], 22_000).await;
        let old_end = WriteOp::Disconnected {
            pile: "P2".into(),
            node: "a".into(),
            connection: 2,
        };
        write(&*repo, vec![old_end], 22_001).await;
        let p2 = repo.pile("P2").await.unwrap().unwrap();
        assert_eq!(
            (p2.node.as_deref(), p2.connection),
            (Some("b"), Some(9)),
            "{kind}"
        );

        // A node that leaves takes the presence of its piles with it.
        assert_eq!(repo.leave("a").await.unwrap(), 1, "{kind}");
        let names: Vec<String> = repo
            .nodes()
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["b"], "{kind}");
        assert_eq!(
            repo.pile("P1").await.unwrap().unwrap().connection,
            None,
            "{kind}"
        );
    }
}

/// On the database's clock: a node heard from now stays, one heard from a minute ago (by this
/// machine's clock) goes; a lease taken now is held, and expires after its time to live.
#[tokio::test]
async fn silences_and_expiries_on_the_databases_clock() {
    for (kind, repo) in common::repositories("cluster", "db_clock").await {
        let minute_ago = chrono::Utc::now().timestamp_millis() - 60_000;
        repo.heartbeat("old", "h:1", At::Time(minute_ago))
            .await
            .unwrap();
        assert!(!repo.heartbeat("new", "h:2", At::Database).await.unwrap());
        assert!(repo.heartbeat("new", "h:2", At::Database).await.unwrap());
        let silent: Vec<(String, bool)> = repo
            .nodes()
            .await
            .unwrap()
            .into_iter()
            .map(|n| (n.name, n.silent_ms >= 60_000))
            .collect();
        assert_eq!(
            silent,
            [("new".to_owned(), false), ("old".to_owned(), true)],
            "{kind}"
        );
        let reaped = repo.reap_nodes(TTL, At::Database).await.unwrap();
        assert_eq!(reaped, ["old"], "{kind}");

        assert!(repo
            .take_lease("job", "a", TTL, At::Database)
            .await
            .unwrap());
        assert!(!repo
            .take_lease("job", "b", TTL, At::Database)
            .await
            .unwrap());
        let holder = repo.lease_holder("job", At::Database).await.unwrap();
        assert_eq!(holder.as_deref(), Some("a"), "{kind}");
        let short = Duration::from_millis(50);
        assert!(repo
            .take_lease("brief", "a", short, At::Database)
            .await
            .unwrap());
        common::wait::until(
            Duration::from_secs(5),
            "the brief lease expired",
            || async {
                repo.take_lease("brief", "b", TTL, At::Database)
                    .await
                    .unwrap()
                    .then_some(())
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires() {
    for (kind, repo) in common::repositories("cluster", "leases").await {
        assert!(
            repo.take_lease("job", "a", TTL, At::Time(0)).await.unwrap(),
            "{kind}"
        );
        assert!(
            !repo
                .take_lease("job", "b", TTL, At::Time(5_000))
                .await
                .unwrap(),
            "{kind}"
        );
        assert_eq!(
            repo.lease_holder("job", At::Time(5_000))
                .await
                .unwrap()
                .as_deref(),
            Some("a")
        );
        // Renewed by its holder.
        assert!(
            repo.take_lease("job", "a", TTL, At::Time(10_000))
                .await
                .unwrap(),
            "{kind}"
        );
        assert!(
            !repo
                .take_lease("job", "b", TTL, At::Time(20_000))
                .await
                .unwrap(),
            "{kind}"
        );
        // Expired: the next node takes it; the old holder no longer renews it.
        assert!(
            repo.take_lease("job", "b", Duration::from_millis(14999), At::Time(25_001))
                .await
                .unwrap(),
            "{kind}"
        );
        assert!(
            !repo
                .take_lease("job", "a", TTL, At::Time(26_000))
                .await
                .unwrap(),
            "{kind}"
        );
        assert_eq!(
            repo.lease_holder("job", At::Time(26_000))
                .await
                .unwrap()
                .as_deref(),
            Some("b")
        );
        assert_eq!(
            repo.lease_holder("job", At::Time(40_001)).await.unwrap(),
            None,
            "{kind}"
        );
        // Given up: free at once; only its holder gives it up.
        repo.release_lease("job", "a").await.unwrap();
        assert_eq!(
            repo.lease_holder("job", At::Time(27_000))
                .await
                .unwrap()
                .as_deref(),
            Some("b")
        );
        repo.release_lease("job", "b").await.unwrap();
        assert!(
            repo.take_lease("job", "a", TTL, At::Time(27_000))
                .await
                .unwrap(),
            "{kind}"
        );
        // Leases are independent of each other.
        assert!(
            repo.take_lease("other", "b", TTL, At::Time(27_000))
                .await
                .unwrap(),
            "{kind}"
        );
        // A node that stops gives up all of its own, and only those.
        assert!(repo
            .take_lease("third", "b", TTL, At::Time(27_000))
            .await
            .unwrap());
        assert_eq!(repo.release_leases("b").await.unwrap(), 2, "{kind}");
        assert_eq!(
            repo.lease_holder("other", At::Time(28_000)).await.unwrap(),
            None
        );
        assert_eq!(
            repo.lease_holder("job", At::Time(28_000))
                .await
                .unwrap()
                .as_deref(),
            Some("a")
        );
    }
}

#[tokio::test]
async fn the_first_setting_stored_is_the_one_every_node_reads() {
    for (kind, repo) in common::repositories("cluster", "settings").await {
        assert_eq!(repo.setting("cluster_id").await.unwrap(), None, "{kind}");
        let (a, b) = tokio::join!(
            repo.init_setting("cluster_id", "first"),
            repo.init_setting("cluster_id", "second")
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a, b, "{kind}: both agree");
        assert_eq!(repo.setting("cluster_id").await.unwrap(), Some(a), "{kind}");
        repo.ping().await.unwrap();
    }
}

/// The main pool's eight connections all wait (on a lock held outside the store): the node's
/// heartbeat and its leases still go through, on their own connections.
#[tokio::test]
async fn the_heartbeat_and_the_leases_do_not_wait_behind_a_busy_store() {
    let url = common::pg_schema("cluster", "own_pool").await;
    let schema = url.rsplit_once("?schema=").unwrap().1.to_owned();
    let repo = central::store::open(&url).await.unwrap();
    let mut locker = sqlx::postgres::PgConnection::connect(&common::pg_url())
        .await
        .unwrap();
    sqlx::query(&format!("SET search_path TO {schema}"))
        .execute(&mut locker)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE piles IN ACCESS EXCLUSIVE MODE")
        .execute(&mut locker)
        .await
        .unwrap();
    let readers: Vec<_> = (0..12)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.pile("P1").await.map(|p| p.is_none()) })
        })
        .collect();
    // Every connection of the main pool waits on the lock.
    let watcher = sqlx::PgPool::connect(&common::pg_url()).await.unwrap();
    let table = format!("{schema}.piles");
    common::wait::until(
        Duration::from_secs(10),
        "the store's pool all waiting",
        || {
            let (watcher, table) = (watcher.clone(), table.clone());
            async move {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
                )
                .bind(table)
                .fetch_one(&watcher)
                .await
                .unwrap();
                (waiting >= 8).then_some(())
            }
        },
    )
    .await;
    let beat = tokio::time::timeout(
        Duration::from_secs(5),
        repo.heartbeat("a", "h:1", At::Time(1_000)),
    )
    .await;
    assert!(matches!(beat, Ok(Ok(false))), "heartbeat: {beat:?}");
    let lease = tokio::time::timeout(
        Duration::from_secs(5),
        repo.take_lease("job", "a", TTL, At::Time(1_000)),
    )
    .await;
    assert!(matches!(lease, Ok(Ok(true))), "lease: {lease:?}");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    for reader in readers {
        assert!(reader.await.unwrap().unwrap(), "the reads go on afterwards");
    }
}

fn waiting(pile: &str, position: i64) -> RolloutRow {
    RolloutRow {
        campaign: 0,
        position,
        pile: pile.into(),
        phase: "waiting".into(),
        outcome: None,
        state: "{}".into(),
    }
}

/// Two nodes create a campaign at the same moment, both with the pile P2: exactly one gets it;
/// the other stores nothing and names the pile. Once P2's upgrade is done, another campaign may
/// take it.
#[tokio::test]
async fn two_campaigns_created_at_once_never_share_a_pile() {
    let (a, b) = common::two_nodes("cluster", "campaigns").await;
    for round in 0..5 {
        let p = |n: u32| format!("R{round}-P{n}");
        let on_a = [waiting(&p(1), 0), waiting(&p(2), 1)];
        let on_b = [waiting(&p(3), 0), waiting(&p(2), 1)];
        let (x, y) = tokio::join!(
            a.create_campaign("{}", &on_a, 1_000),
            b.create_campaign("{}", &on_b, 1_000),
        );
        let (winner, busy) = match (x.unwrap(), y.unwrap()) {
            (CampaignCreated::Id(id), busy) | (busy, CampaignCreated::Id(id)) => (id, busy),
            both => panic!("round {round}: not one winner: {both:?}"),
        };
        assert_eq!(
            busy,
            CampaignCreated::Busy {
                pile: p(2),
                campaign: winner
            },
            "round {round}"
        );
        let stored = a.campaigns().await.unwrap();
        assert_eq!(
            stored.len(),
            2 * round + 1,
            "round {round}: the loser left no row"
        );
        // P2 done in the winner: a new campaign takes it.
        let mut done = waiting(&p(2), 1);
        done.campaign = winner;
        done.phase = "done".into();
        let put = WriteOp::PutRollout {
            row: done,
            fence: None,
        };
        write(&*a, vec![put], 2_000).await;
        let again = b
            .create_campaign("{}", &[waiting(&p(2), 0)], 3_000)
            .await
            .unwrap();
        assert!(matches!(again, CampaignCreated::Id(_)), "{again:?}");
        // And while that one runs, no other.
        let third = a
            .create_campaign("{}", &[waiting(&p(2), 0)], 3_000)
            .await
            .unwrap();
        assert!(matches!(third, CampaignCreated::Busy { .. }), "{third:?}");
    }
}

/// A node's lease of a campaign lapses while the node is paused, and another node's keeper
/// takes it: the first node's writes of the campaign, fenced by the lease, change nothing once
/// it resumes; the new holder's go through.
#[tokio::test]
async fn a_campaigns_writes_go_through_only_under_its_lease() {
    use central::cluster::lease::{wall_clock, Change, Keeper};

    for (kind, repo) in common::repositories("cluster", "fence").await {
        let created = repo
            .create_campaign("{}", &[waiting("F1", 0)], 1_000)
            .await
            .unwrap();
        let CampaignCreated::Id(id) = created else {
            panic!("{kind}: {created:?}")
        };
        let lease = format!("campaign:{id}");
        let brief = Duration::from_millis(100);
        let mut a = Keeper::shared(lease.as_str(), "a", brief, repo.clone(), wall_clock());
        let mut b = Keeper::shared(lease.as_str(), "b", TTL, repo.clone(), wall_clock());
        assert_eq!(a.keep().await, Change::Taken, "{kind}");
        let put = |holder: &str, phase: &str| WriteOp::PutRollout {
            row: RolloutRow {
                campaign: id,
                phase: phase.into(),
                ..waiting("F1", 0)
            },
            fence: Some(Fence {
                lease: lease.clone(),
                holder: holder.into(),
            }),
        };
        let state = |holder: &str| WriteOp::CampaignState {
            id,
            state: "cancelling".into(),
            finished_at: None,
            fence: Some(Fence {
                lease: lease.clone(),
                holder: holder.into(),
            }),
        };
        let written = repo.apply(&[put("a", "downloading")], 2_000).await.unwrap();
        assert_eq!(written, [WriteResult::Affected(1)], "{kind}");
        // a is paused: its lease lapses in the database, and b takes it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while b.keep().await != Change::Taken {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind}: b never took it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // a resumes: what it writes under the lease it lost changes nothing.
        let written = repo
            .apply(&[put("a", "rebooting"), state("a")], 3_000)
            .await
            .unwrap();
        assert_eq!(
            written,
            [WriteResult::Affected(0), WriteResult::Affected(0)],
            "{kind}"
        );
        let rows = repo.rollouts(id).await.unwrap();
        assert_eq!(rows[0].phase, "downloading", "{kind}");
        let campaign = repo.campaigns().await.unwrap();
        assert_eq!(campaign[0].state, "running", "{kind}");
        // b's go through.
        let written = repo
            .apply(&[put("b", "rebooting"), state("b")], 4_000)
            .await
            .unwrap();
        assert_eq!(
            written,
            [WriteResult::Affected(1), WriteResult::Affected(1)],
            "{kind}"
        );
        assert_eq!(repo.rollouts(id).await.unwrap()[0].phase, "rebooting");
        assert_eq!(repo.campaigns().await.unwrap()[0].state, "cancelling");
    }
}
