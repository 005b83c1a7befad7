//! Three nodes of `ocpile central` on one port (SO_REUSEPORT), 300 piles of `ocpile fleet` in
//! card sessions (all real processes, one PostgreSQL schema, one NATS server): a command
//! through any node's API reaches a pile on any node; one node killed with SIGKILL mid-session
//! loses nothing: within 30 s every pile is connected again to a live node, once, and every
//! message the piles had answered is in the database once.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{
    assert_nothing_lost, held_by, poll, presence, until_metered_again, until_sessions_running,
    until_spread, Cluster,
};
use common::fleet::{
    fleet_ids, fleet_until, start_card_sessions, start_fleet, stop_card_sessions,
    until_all_answered,
};
use common::{http, state_dir};
use serde_json::json;

const PILES: usize = 300;
const CARD: &str = "CLUSTER-CARD";

/// Every pile in `GET /api/piles` of node `i` connected, on one of `live`; the count by node.
async fn piles_seen_by(
    cluster: &Cluster,
    i: usize,
    live: &[&str],
) -> Option<BTreeMap<String, usize>> {
    let (code, piles) = cluster
        .api_on(i, "GET", "/api/piles?online=true", None)
        .await;
    assert_eq!(code, 200, "{piles}");
    let piles = piles.as_array().unwrap();
    let mut by_node = BTreeMap::new();
    for p in piles {
        let node = p["node"].as_str()?;
        if p["connected"] != true || !live.contains(&node) {
            return None;
        }
        *by_node.entry(node.to_owned()).or_insert(0) += 1;
    }
    (piles.len() == PILES).then_some(by_node)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_sessions_loses_no_pile_and_no_message() {
    let began = Instant::now();
    let mut cluster = Cluster::on_one_port("ckill", 3, &["--admission", "open"]);
    let names: Vec<String> = (0..3).map(|i| cluster.name(i).to_owned()).collect();
    cluster.any().accept_id_tag(CARD).await;
    let (_fleet, control) = start_fleet(
        PILES,
        &cluster.ocpp_url(),
        &state_dir("ckill-fleet"),
        &["--bind", "127.0.0.2-127.0.0.4"],
    );
    until_spread(&cluster, &control, PILES, &names, "the kernel").await;

    // A command through each node's API reaches a pile on each node; a pile connected to none
    // is 409 at once.
    for i in 0..3 {
        for holder in &names {
            let pile = held_by(&cluster, holder).await;
            let path = format!("/api/piles/{pile}/commands/GetConfiguration");
            let answer = cluster
                .ok_on(
                    i,
                    "POST",
                    &path,
                    Some(json!({"key": ["HeartbeatInterval"]})),
                )
                .await;
            let keys = answer["response"]["configurationKey"].as_array();
            assert!(
                keys.is_some_and(|k| k.iter().any(|k| k["key"] == "HeartbeatInterval")),
                "{pile} on {holder} through {}: {answer}",
                names[i]
            );
        }
    }
    cluster
        .any()
        .ok("POST", "/api/piles", Some(json!({"id": "CKILL-NOWHERE"})))
        .await;
    let asked = Instant::now();
    let (code, body) = cluster
        .api_on(
            2,
            "POST",
            "/api/piles/CKILL-NOWHERE/commands/Reset",
            Some(json!({"type": "Soft"})),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(asked.elapsed() < Duration::from_secs(5), "409 at once");

    // Card sessions everywhere; meter values every second.
    let ids = fleet_ids(PILES);
    start_card_sessions(&control, &ids, CARD).await;
    until_sessions_running(cluster.schema(), PILES).await;
    until_metered_again(cluster.schema(), PILES).await;

    // SIGKILL of node 1 in the middle of the sessions.
    let killed = cluster.name(1).to_owned();
    let held = presence(cluster.schema())
        .await
        .get(&killed)
        .copied()
        .unwrap_or(0);
    cluster.kill(1);
    let kill = Instant::now();
    let live = [names[0].as_str(), names[2].as_str()];
    poll(
        Duration::from_secs(30),
        "every pile on a live node",
        || async {
            let p = presence(cluster.schema()).await;
            let on_live: i64 = live.iter().filter_map(|n| p.get(*n)).sum();
            (on_live == PILES as i64 && !p.contains_key(&killed)).then_some(())
        },
    )
    .await;
    let moved = kill.elapsed();
    // Both live nodes see it so, and the dead one is gone from the nodes' list.
    for i in [0, 2] {
        let by_node = poll(
            Duration::from_secs(10),
            "the piles listed on live nodes",
            || piles_seen_by(&cluster, i, &live),
        )
        .await;
        let nodes = poll(Duration::from_secs(10), "the dead node gone", || async {
            let (_, nodes) = cluster.api_on(i, "GET", "/api/nodes", None).await;
            let nodes = nodes.as_array()?.clone();
            (nodes.len() == 2).then_some(nodes)
        })
        .await;
        for n in &nodes {
            let name = n["name"].as_str().unwrap();
            assert!(live.contains(&name), "{nodes:?}");
            assert_eq!(
                n["piles"].as_u64(),
                by_node.get(name).map(|c| *c as u64),
                "{name}: {nodes:?}"
            );
        }
    }
    let summary = fleet_until(
        &control,
        Duration::from_secs(30),
        "every pile accepted again",
        |s| s["connected"] == PILES && s["accepted"] == PILES,
    )
    .await;
    eprintln!(
        "{held} piles of {killed} on live nodes {:.1} s after the kill; {} connections in all",
        moved.as_secs_f64(),
        summary["connections"]
    );

    // The sessions go on a little, then end; every pile has everything answered.
    until_metered_again(cluster.schema(), PILES).await;
    stop_card_sessions(&control, &ids, CARD).await;
    until_all_answered(&control, &ids, Duration::from_secs(60)).await;
    let (answered, stored) = assert_nothing_lost(cluster.schema(), &control, &ids).await;
    // No pile with two connections: one presence each, on a live node, as the fleet counts.
    let p = presence(cluster.schema()).await;
    assert_eq!(p.values().sum::<i64>(), PILES as i64, "{p:?}");
    let (_, summary) = http(&control, "GET", "/fleet", None).await;
    assert_eq!(summary["connected"], PILES, "{summary}");
    eprintln!(
        "{PILES} piles, {answered} MeterValues answered, {stored} stored; {:.1} s in all",
        began.elapsed().as_secs_f64()
    );
}
