//! A firmware campaign on three nodes of `ocpile central` (one port, one PostgreSQL schema, one
//! NATS server) over the piles of `ocpile fleet`: the node that runs it (the holder of its
//! lease) is killed with SIGKILL halfway; another node takes it up and finishes it, and each
//! pile is sent UpdateFirmware once and ends on the new version.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{poll, Cluster};
use common::fleet::{fleet_ids, fleet_until, start_fleet};
use common::state_dir;
use serde_json::{json, Value};

const PILES: usize = 4;
const IMAGE: &str = "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070";
const IMAGE_QUERY: &str = "XSmart.V2.0.110%28M3G31H%29%407KW.EVPro.070";

fn succeeded(campaign: &Value) -> usize {
    campaign["piles"].as_array().map_or(0, |p| {
        p.iter().filter(|r| r["result"] == "succeeded").count()
    })
}

/// The node holding the campaign's lease now (an unexpired one).
async fn holder(cluster: &Cluster, campaign: i64) -> Option<String> {
    let mut conn = cluster.schema().connect().await;
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query_scalar::<_, String>("SELECT holder FROM leases WHERE name = $1 AND expires_at > $2")
        .bind(format!("campaign:{campaign}"))
        .bind(now)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_campaign_whose_node_is_killed_finishes_on_another_each_pile_upgraded_once() {
    let began = Instant::now();
    let mut cluster = Cluster::on_one_port("ccamp", 3, &["--admission", "open"]);
    let (_fleet, control) = start_fleet(PILES, &cluster.ocpp_url(), &state_dir("ccamp-fleet"), &[]);
    fleet_until(
        &control,
        Duration::from_secs(30),
        "every pile accepted",
        |s| s["accepted"] == PILES,
    )
    .await;
    let ids = fleet_ids(PILES);
    for id in &ids {
        cluster
            .any()
            .until(&format!("/api/piles/{id}"), "the pile booted", |p| {
                p["connected"] == true && p["model"].is_string()
            })
            .await;
    }

    // The image, uploaded to whichever node the port gives; kept in the database.
    let body = vec![0x5Au8; 64 * 1024];
    let (code, image) = cluster
        .any()
        .post_bytes(
            &format!("/api/firmware?name={IMAGE_QUERY}&version={IMAGE_QUERY}"),
            &body,
        )
        .await;
    assert_eq!(code, 201, "{image}");
    let (code, campaign) = cluster
        .any()
        .api(
            "POST",
            "/api/campaigns",
            Some(json!({"firmware": [image["id"]], "piles": ids, "batch_size": 2})),
        )
        .await;
    assert_eq!(code, 201, "{campaign}");
    let id = campaign["id"].as_i64().unwrap();
    let path = format!("/api/campaigns/{id}");

    // Halfway (the first batch done, the campaign running), its node dies.
    let first = poll(
        Duration::from_secs(60),
        "the first batch upgraded",
        || async {
            let (_, c) = cluster.any().api("GET", &path, None).await;
            (succeeded(&c) >= 2).then_some(c)
        },
    )
    .await;
    assert_eq!(first["state"], "running", "{first}");
    let runner = poll(Duration::from_secs(10), "the campaign's lease held", || {
        holder(&cluster, id)
    })
    .await;
    let runner_index = (0..cluster.len())
        .find(|i| cluster.name(*i) == runner)
        .unwrap_or_else(|| panic!("{runner} is no node of ours"));
    cluster.kill(runner_index);
    let kill = Instant::now();
    eprintln!(
        "{runner} killed with {} of {PILES} piles upgraded",
        succeeded(&first)
    );

    // Another node takes the campaign up (its lease, once the dead node's expired) and
    // finishes it.
    let taken_by = poll(Duration::from_secs(20), "the campaign taken up", || async {
        holder(&cluster, id).await.filter(|h| *h != runner)
    })
    .await;
    let taken_after = kill.elapsed();
    let done = poll(Duration::from_secs(90), "the campaign finished", || async {
        let (_, c) = cluster.any().api("GET", &path, None).await;
        (c["state"] == "finished").then_some(c)
    })
    .await;
    let finished_after = kill.elapsed();
    assert_eq!(done["counts"]["succeeded"], PILES, "{done}");

    // Each pile on the new version, sent UpdateFirmware once.
    for pile in &ids {
        let view = cluster
            .any()
            .until(&format!("/api/piles/{pile}"), "the pile back", |v| {
                v["connected"] == true && v["firmware_version"] == IMAGE
            })
            .await;
        assert_eq!(view["firmware_version"], IMAGE);
        let log = cluster
            .any()
            .ok(
                "GET",
                &format!("/api/piles/{pile}/messages?action=UpdateFirmware&limit=100"),
                None,
            )
            .await;
        let sent = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                let frame: Value =
                    serde_json::from_str(m["frame"].as_str().unwrap_or_default()).unwrap();
                m["direction"] == "out" && frame[0] == 2
            })
            .count();
        assert_eq!(sent, 1, "{pile}: UpdateFirmware sent {sent} times: {log}");
    }
    eprintln!(
        "taken up by {taken_by} {:.1} s after the kill, finished {:.1} s after it; {:.1} s in all",
        taken_after.as_secs_f64(),
        finished_after.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}
