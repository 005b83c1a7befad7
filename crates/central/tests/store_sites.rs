//! Sites in the store, on SQLite and PostgreSQL: their terms kept and changed, a pile on one
//! site at most (even when two nodes add it at once), the allocations log newest first and
//! appended only under the site's lease, and a site removed with its piles and its log.

mod common;

use std::time::Duration;

use central::store::{AllocationRow, Fence, Joined, SitePileRow, SiteRow};

fn terms(name: &str) -> SiteRow {
    SiteRow {
        id: 0,
        name: name.into(),
        capacity_a: 63.0,
        phases: 1,
        min_a: 6.0,
        failsafe_a: 6.3,
        settle_ms: 60_000,
        schedule: Some(r#"{"cycle":"daily","periods":[]}"#.into()),
        priorities: None,
        created_at: 1_000,
    }
}

fn decision(site: i64, time: i64, transaction_id: i64, granted_a: f64) -> AllocationRow {
    AllocationRow {
        site,
        time,
        pile: "P1".into(),
        connector: 1,
        transaction_id,
        granted_a,
        queued: false,
        why: "arrival: equal share among 2 sessions of group 0".into(),
    }
}

#[tokio::test]
async fn sites_are_kept_changed_and_removed_with_their_piles_and_log() {
    for (kind, repo) in common::repositories("sites", "terms").await {
        let a = repo.create_site(&terms("Depot")).await.unwrap();
        let b = repo.create_site(&terms("Office")).await.unwrap();
        assert_ne!(a, b, "{kind}");
        let stored = repo.site(a).await.unwrap().expect("stored");
        assert_eq!(
            stored,
            SiteRow {
                id: a,
                ..terms("Depot")
            },
            "{kind}"
        );

        let changed = SiteRow {
            id: a,
            capacity_a: 40.5,
            schedule: None,
            created_at: 99,
            ..terms("Depot yard")
        };
        assert!(repo.update_site(&changed).await.unwrap(), "{kind}");
        let stored = repo.site(a).await.unwrap().unwrap();
        assert_eq!(
            (
                stored.name.as_str(),
                stored.capacity_a,
                stored.schedule,
                stored.created_at
            ),
            ("Depot yard", 40.5, None, 1_000),
            "{kind}: the terms replaced, the creation time kept"
        );
        let missing = SiteRow { id: 999, ..changed };
        assert!(!repo.update_site(&missing).await.unwrap(), "{kind}");
        let names: Vec<String> = repo
            .sites()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["Depot yard", "Office"], "{kind}");

        // A pile on one site at most; again on the same site, its connector changes.
        assert_eq!(repo.join_site(a, "P1", None).await.unwrap(), Joined::Added);
        assert_eq!(
            repo.join_site(a, "P2", Some(2)).await.unwrap(),
            Joined::Added
        );
        assert_eq!(
            repo.join_site(b, "P1", None).await.unwrap(),
            Joined::OtherSite(a),
            "{kind}"
        );
        assert_eq!(
            repo.join_site(a, "P1", Some(1)).await.unwrap(),
            Joined::Added
        );
        assert_eq!(
            repo.join_site(999, "P3", None).await.unwrap(),
            Joined::NoSite
        );
        let on_a = repo.site_piles(Some(a)).await.unwrap();
        let member = |pile: &str, connector| SitePileRow {
            site: a,
            pile: pile.into(),
            connector,
        };
        assert_eq!(
            on_a,
            [member("P1", Some(1)), member("P2", Some(2))],
            "{kind}"
        );
        assert_eq!(repo.site_piles(Some(b)).await.unwrap(), [], "{kind}");
        assert_eq!(repo.site_piles(None).await.unwrap().len(), 2, "{kind}");
        assert_eq!(
            repo.site_of_pile("P2").await.unwrap(),
            Some(member("P2", Some(2))),
            "{kind}"
        );
        assert!(repo.leave_site(a, "P2").await.unwrap(), "{kind}");
        assert!(!repo.leave_site(a, "P2").await.unwrap(), "{kind}");
        assert_eq!(repo.site_of_pile("P2").await.unwrap(), None, "{kind}");
        assert_eq!(repo.join_site(b, "P2", None).await.unwrap(), Joined::Added);

        // The log, newest first, paged by time.
        let rows: Vec<AllocationRow> = (1..=5)
            .map(|i| decision(a, i * 1_000, i, 6.0 + i as f64 / 10.0))
            .chain([decision(b, 2_500, 7, 16.0)])
            .collect();
        assert!(repo.record_allocations(&rows, None).await.unwrap());
        assert!(repo.record_allocations(&[], None).await.unwrap());
        let newest = repo.allocations(a, None, 2).await.unwrap();
        assert_eq!(newest, [rows[4].clone(), rows[3].clone()], "{kind}");
        let older = repo.allocations(a, Some(4_000), 10).await.unwrap();
        let times: Vec<i64> = older.iter().map(|r| r.time).collect();
        assert_eq!(times, [3_000, 2_000, 1_000], "{kind}");
        assert_eq!(
            repo.allocations(b, None, 10).await.unwrap(),
            [rows[5].clone()]
        );

        // Removed: its piles free, its log gone; the other site untouched.
        assert!(repo.delete_site(a).await.unwrap(), "{kind}");
        assert!(!repo.delete_site(a).await.unwrap(), "{kind}");
        assert_eq!(repo.site(a).await.unwrap(), None, "{kind}");
        assert_eq!(repo.site_of_pile("P1").await.unwrap(), None, "{kind}");
        assert_eq!(repo.allocations(a, None, 10).await.unwrap(), [], "{kind}");
        assert_eq!(repo.site_piles(None).await.unwrap().len(), 1, "{kind}");
        assert_eq!(repo.allocations(b, None, 10).await.unwrap().len(), 1);
        // A new site's id is not a removed one's.
        let c = repo.create_site(&terms("Yard")).await.unwrap();
        assert!(c > b, "{kind}");
    }
}

#[tokio::test]
async fn two_nodes_adding_one_pile_to_two_sites_at_once_leave_it_on_one() {
    let (one, two) = common::two_nodes("sites", "race").await;
    let a = one.create_site(&terms("A")).await.unwrap();
    let b = two.create_site(&terms("B")).await.unwrap();
    for round in 0..20 {
        let pile = format!("P{round}");
        let (x, y) = tokio::join!(one.join_site(a, &pile, None), two.join_site(b, &pile, None));
        let mut outcomes = [x.unwrap(), y.unwrap()];
        outcomes.sort_by_key(|j| matches!(j, Joined::OtherSite(_)));
        let on = repo_site(&*one, &pile).await;
        let other = if on == a { b } else { a };
        assert_eq!(outcomes, [Joined::Added, Joined::OtherSite(on)], "{pile}");
        assert_ne!(on, other);
    }
}

async fn repo_site(repo: &dyn central::store::Repository, pile: &str) -> i64 {
    repo.site_of_pile(pile)
        .await
        .unwrap()
        .expect("on a site")
        .site
}

/// A node's lease of a site lapses while the node is paused, and another node's keeper takes
/// it: the first node's allocations, fenced by the lease, are refused once it resumes (nothing
/// written); the new holder's go in.
#[tokio::test]
async fn a_sites_allocations_are_written_only_under_its_lease() {
    use central::cluster::lease::{wall_clock, Change, Keeper};
    use central::site::runtime::lease_name;

    for (kind, repo) in common::repositories("sites", "fence").await {
        let site = repo.create_site(&terms("Fenced")).await.unwrap();
        let lease = lease_name(site);
        let fence = |holder: &str| Fence {
            lease: lease.clone(),
            holder: holder.into(),
        };
        let brief = Duration::from_millis(100);
        let ttl = Duration::from_secs(15);
        let mut a = Keeper::shared(lease.as_str(), "a", brief, repo.clone(), wall_clock());
        let mut b = Keeper::shared(lease.as_str(), "b", ttl, repo.clone(), wall_clock());
        // Before anyone holds it, no one writes under it.
        let first = [decision(site, 1_000, 1, 31.5)];
        let written = repo.record_allocations(&first, Some(&fence("a"))).await;
        assert!(!written.unwrap(), "{kind}: written under a lease not taken");
        assert_eq!(a.keep().await, Change::Taken, "{kind}");
        assert!(repo
            .record_allocations(&first, Some(&fence("a")))
            .await
            .unwrap());
        // a is paused: its lease lapses in the database, and b takes it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while b.keep().await != Change::Taken {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{kind}: b never took it"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // a resumes: its decisions under the lease it lost are refused, none of them written.
        let late = [
            decision(site, 2_000, 1, 21.0),
            decision(site, 2_000, 2, 21.0),
        ];
        let written = repo.record_allocations(&late, Some(&fence("a"))).await;
        assert!(!written.unwrap(), "{kind}: written under a lease lost");
        let log = repo.allocations(site, None, 10).await.unwrap();
        assert_eq!(log, first, "{kind}");
        // b's go in.
        let taken = [
            decision(site, 3_000, 1, 31.5),
            decision(site, 3_000, 2, 31.5),
        ];
        assert!(repo
            .record_allocations(&taken, Some(&fence("b")))
            .await
            .unwrap());
        let log = repo.allocations(site, None, 10).await.unwrap();
        assert_eq!(log.len(), 3, "{kind}: {log:?}");
        assert!(log[..2].iter().all(|r| r.time == 3_000), "{kind}");
        // Without a fence (a node alone), a write goes in as before.
        assert!(repo.record_allocations(&late, None).await.unwrap());
    }
}
