//! A rolling restart of three nodes of `ocpile central` on one port (SO_REUSEPORT), with 150
//! piles of `ocpile fleet` in card sessions: each node in turn gets SIGTERM, drains (closes its
//! piles' connections spread over --drain-seconds, finishes its commits, exits) and starts
//! again. No pile is offline for longer than its reconnect plus a drain slot, and nothing the
//! piles sent is lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{
    assert_nothing_lost, poll, presence, until_sessions_running, Cluster, Schema,
};
use common::fleet::{
    fleet_ids, fleet_until, start_card_sessions, start_fleet, stop_card_sessions,
    until_all_answered,
};
use common::state_dir;

const PILES: usize = 150;
const CARD: &str = "ROLLING-CARD";
/// --drain-seconds of the nodes (the harness's).
const DRAIN: Duration = Duration::from_secs(1);
/// A pile's first reconnect: 2 s of backoff and up to a quarter more of jitter.
const RECONNECT: Duration = Duration::from_millis(2500);
/// The handshake, the BootNotification and the commit of the presence on a busy 2-core machine,
/// and the 100 ms of the watch's polls (measured: up to 1.5 s). A pile whose first reconnect
/// failed waits 4 s more before its second: past the bound.
const SLACK: Duration = Duration::from_millis(2500);

/// The longest time each pile was seen offline in the database, watched every 100 ms.
#[derive(Default)]
struct Offline {
    since: BTreeMap<String, Instant>,
    longest: BTreeMap<String, Duration>,
}

async fn watch(schema: &Schema, offline: &Mutex<Offline>, stop: &AtomicBool) {
    let mut conn = schema.connect().await;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let gone: BTreeSet<String> =
            sqlx::query_scalar::<_, String>("SELECT id FROM piles WHERE connection IS NULL")
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .into_iter()
                .collect();
        {
            let mut o = offline.lock().unwrap();
            let back: Vec<String> = o
                .since
                .keys()
                .filter(|p| !gone.contains(*p))
                .cloned()
                .collect();
            for pile in back {
                let since = o.since.remove(&pile).unwrap();
                let longest = o.longest.entry(pile).or_default();
                *longest = (*longest).max(now - since);
            }
            for pile in gone {
                o.since.entry(pile).or_insert(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rolling_restart_of_three_nodes_keeps_every_pile_and_message() {
    let began = Instant::now();
    let mut cluster = Cluster::on_one_port("croll", 3, &["--admission", "open"]);
    cluster.any().accept_id_tag(CARD).await;
    let (_fleet, control) = start_fleet(
        PILES,
        &cluster.ocpp_url(),
        &state_dir("croll-fleet"),
        &["--bind", "127.0.0.2-127.0.0.4"],
    );
    fleet_until(
        &control,
        Duration::from_secs(60),
        "every pile accepted",
        |s| s["accepted"] == PILES,
    )
    .await;
    let ids = fleet_ids(PILES);
    start_card_sessions(&control, &ids, CARD).await;
    until_sessions_running(cluster.schema(), PILES).await;

    let offline = Arc::new(Mutex::new(Offline::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (offline, stop) = (offline.clone(), stop.clone());
        let schema_name = cluster.schema().name().to_owned();
        let schema = Schema::named(&schema_name);
        tokio::spawn(async move { watch(&schema, &offline, &stop).await })
    };

    for i in 0..cluster.len() {
        let name = cluster.name(i).to_owned();
        let held = presence(cluster.schema())
            .await
            .get(&name)
            .copied()
            .unwrap_or(0);
        let (took, clean) = cluster.terminate(i, DRAIN + Duration::from_secs(15));
        assert!(
            clean,
            "{name} did not exit cleanly after SIGTERM ({took:?})"
        );
        // Its piles are on the two others before it is back.
        poll(
            Duration::from_secs(30),
            "the drained node's piles elsewhere",
            || async {
                let p = presence(cluster.schema()).await;
                let total: i64 = p.values().sum();
                (total == PILES as i64 && !p.contains_key(&name)).then_some(())
            },
        )
        .await;
        eprintln!(
            "{name}: {held} piles drained, exited {:.1} s after SIGTERM",
            took.as_secs_f64()
        );
        cluster.start_node(i);
    }
    fleet_until(
        &control,
        Duration::from_secs(30),
        "every pile accepted",
        |s| s["connected"] == PILES && s["accepted"] == PILES,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    let o = std::mem::take(&mut *offline.lock().unwrap());
    assert!(o.since.is_empty(), "offline at the end: {:?}", o.since);
    let bound = RECONNECT + DRAIN + SLACK;
    let worst = o.longest.iter().max_by_key(|(_, d)| **d);
    eprintln!(
        "{} piles went offline once or more; the longest: {worst:?} (bound {bound:?})",
        o.longest.len()
    );
    let late: Vec<_> = o.longest.iter().filter(|(_, d)| **d > bound).collect();
    assert!(late.is_empty(), "offline longer than {bound:?}: {late:?}");
    assert!(!o.longest.is_empty(), "the restarts moved no pile");

    // Nothing lost: the sessions end and every message is in the database once.
    stop_card_sessions(&control, &ids, CARD).await;
    until_all_answered(&control, &ids, Duration::from_secs(60)).await;
    let (answered, stored) = assert_nothing_lost(cluster.schema(), &control, &ids).await;
    let p = presence(cluster.schema()).await;
    assert_eq!(p.values().sum::<i64>(), PILES as i64, "{p:?}");
    eprintln!(
        "{PILES} piles, {answered} MeterValues answered, {stored} stored; {:.1} s in all",
        began.elapsed().as_secs_f64()
    );
}
