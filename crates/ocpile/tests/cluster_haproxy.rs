//! HAProxy (the shipped deploy/haproxy.cfg) in front of two nodes of `ocpile central` (one
//! PostgreSQL schema, one NATS server), 40 piles of `ocpile fleet` in card sessions through it:
//! a command through HAProxy or either node reaches a pile on either node; one node killed with
//! SIGKILL mid-session: every pile is connected again, through HAProxy, to the other within
//! 30 s, once, and every message the piles had answered is in the database once.

mod common;

use std::time::{Duration, Instant};

use common::central::TOKEN;
use common::cluster::{
    assert_nothing_lost, free_port, held_by, poll, presence, until_metered_again,
    until_sessions_running, until_spread, Cluster,
};
use common::fleet::{
    fleet_ids, fleet_until, start_card_sessions, start_fleet, stop_card_sessions,
    until_all_answered,
};
use common::haproxy::{config, HaProxy};
use common::{http, http_with, state_dir};
use serde_json::json;

const PILES: usize = 40;
const CARD: &str = "HAPROXY-CARD";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs haproxy; scripts/test.sh installs it and runs this test"]
async fn haproxy_in_front_of_two_nodes_loses_no_pile_and_no_message() {
    let began = Instant::now();
    let mut cluster = Cluster::on_own_ports("chaproxy", 2, &["--admission", "open"]);
    let names: Vec<String> = (0..2).map(|i| cluster.name(i).to_owned()).collect();
    let (front, stats) = (free_port(), free_port());
    let servers: Vec<String> = (0..2).map(|i| cluster.node(i).addr.clone()).collect();
    let _haproxy = HaProxy::start(
        &config(front, stats, &servers),
        &state_dir("chaproxy-haproxy"),
    );
    let front = format!("127.0.0.1:{front}");
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    // Ready through HAProxy: the nodes' /health, and the API of the cluster.
    poll(
        Duration::from_secs(30),
        "the cluster through HAProxy",
        || async {
            let (health, _) = http(&front, "GET", "/health", None).await;
            let (code, nodes) = http_with(&front, "GET", "/api/nodes", None, &auth).await;
            (health == 200 && code == 200 && nodes.as_array().is_some_and(|n| n.len() == 2))
                .then_some(())
        },
    )
    .await;
    cluster.node(0).accept_id_tag(CARD).await;

    let (_fleet, control) = start_fleet(
        PILES,
        &format!("ws://{front}/ocpp/"),
        &state_dir("chaproxy-fleet"),
        &[],
    );
    until_spread(&cluster, &control, PILES, &names, "HAProxy").await;

    // A command through HAProxy and through each node reaches a pile on each node.
    for holder in &names {
        let pile = held_by(&cluster, holder).await;
        let path = format!("/api/piles/{pile}/commands/GetConfiguration");
        let body = json!({"key": ["HeartbeatInterval"]});
        for _ in 0..3 {
            let (code, answer) = http_with(&front, "POST", &path, Some(body.clone()), &auth).await;
            assert_eq!(code, 200, "{pile} on {holder} through HAProxy: {answer}");
        }
        for (i, via) in names.iter().enumerate() {
            let answer = cluster.node(i).ok("POST", &path, Some(body.clone())).await;
            assert!(
                answer["response"]["configurationKey"].is_array(),
                "{pile} on {holder} through {via}: {answer}"
            );
        }
    }

    let ids = fleet_ids(PILES);
    start_card_sessions(&control, &ids, CARD).await;
    until_sessions_running(cluster.schema(), PILES).await;
    until_metered_again(cluster.schema(), PILES).await;

    // SIGKILL of node 0: HAProxy's check takes it out, its piles come back through it to
    // node 1.
    cluster.kill(0);
    let kill = Instant::now();
    poll(
        Duration::from_secs(30),
        "every pile on the live node",
        || async {
            let p = presence(cluster.schema()).await;
            (p.get(&names[1]) == Some(&(PILES as i64)) && p.len() == 1).then_some(())
        },
    )
    .await;
    let moved = kill.elapsed();
    fleet_until(
        &control,
        Duration::from_secs(30),
        "every pile accepted again",
        |s| s["connected"] == PILES && s["accepted"] == PILES,
    )
    .await;
    let (code, nodes) = http_with(&front, "GET", "/api/nodes", None, &auth).await;
    assert_eq!(code, 200, "{nodes}");

    until_metered_again(cluster.schema(), PILES).await;
    stop_card_sessions(&control, &ids, CARD).await;
    until_all_answered(&control, &ids, Duration::from_secs(60)).await;
    let (answered, stored) = assert_nothing_lost(cluster.schema(), &control, &ids).await;
    let p = presence(cluster.schema()).await;
    assert_eq!(p.values().sum::<i64>(), PILES as i64, "{p:?}");
    eprintln!(
        "piles on the live node {:.1} s after the kill; {answered} MeterValues answered, \
         {stored} stored; {:.1} s in all",
        moved.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}
