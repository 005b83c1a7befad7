//! `ocpile bench`: the central system and a fleet on this machine, at several fleet sizes, and
//! the same fleet against a minimal central on PyPI's `ocpp` library, side by side. For each
//! size: the time until every pile is booted, memory per idle pile (fleet) and per connection
//! (central) as the RSS growth over N, CPU of each process, the sustained message rate with
//! the `busy` scenario (meter values every `--sample-interval` seconds, 10 by default,
//! persisted in SQLite), the CALL-to-answer latency the piles see, and a check that every
//! answered MeterValues is in the database. With `--nodes K` the central runs on K nodes
//! sharing PostgreSQL and NATS. The fleet takes as many processes as the open-file limit
//! needs; the figures are summed over them.

mod central;
mod fleets;
mod nodes;
mod process;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use pile::telemetry::Latency;
use serde_json::Value;

use central::{Central, Server};
use fleets::Fleets;
pub use process::rss_kib;

const PEER: &str = include_str!("peer_central.py");
const TOKEN: &str = "bench-token";
/// How long the piles get to boot, at most.
const BOOT_LIMIT: Duration = Duration::from_secs(300);
/// Open files a central node needs beside its piles' connections.
const CENTRAL_FILE_MARGIN: u64 = 256;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Fleet sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    counts: Vec<usize>,
    /// Fleet sizes for the PyPI-ocpp central (it is run at these only).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    peer_counts: Vec<usize>,
    /// A python with PyPI's ocpp 2.x and websockets 13+ (none: the peer is left out).
    #[arg(long, env = "OCPILE_INTEROP_PYTHON")]
    python: Option<PathBuf>,
    /// Run our central on this many nodes (`ocpile central --cluster` on one port with
    /// --reuse-port) sharing PostgreSQL ($OCPILE_BENCH_PG, a fresh schema per run) and NATS
    /// ($OCPILE_BENCH_NATS). Without it: one central on SQLite.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    nodes: Option<u64>,
    /// Seconds of the busy window that is measured (after a warm-up).
    #[arg(long, default_value_t = 30)]
    busy_seconds: u64,
    /// Seconds of the idle window that is measured.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// MeterValueSampleInterval of the busy scenario (seconds); a shorter one offers more
    /// messages per pile, for the central's throughput.
    #[arg(long, default_value_t = 10)]
    sample_interval: u32,
    /// Piles started per second (over all fleet processes).
    #[arg(long, default_value_t = 5000.0)]
    connect_rate: f64,
    /// Where the runs keep their data (removed at the end).
    #[arg(long, default_value = "target/bench-fleet")]
    work: PathBuf,
    /// At most this many piles per fleet process (default: what the open-file limit allows).
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    piles_per_fleet: Option<u64>,
}

/// One run's figures.
#[derive(Debug, Default, Clone)]
struct Row {
    central: &'static str,
    nodes: usize,
    fleets: usize,
    piles: usize,
    sample_interval: u32,
    booted: u64,
    boot_s: Option<f64>,
    fleet_kib_per_pile: f64,
    central_kib_per_conn: f64,
    idle_cpu_fleet: f64,
    idle_cpu_central: f64,
    idle_cpu_postgres: Option<f64>,
    busy_calls_per_s: f64,
    busy_frames_per_s: f64,
    busy_cpu_fleet: f64,
    busy_cpu_central: f64,
    busy_cpu_postgres: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    meter_values_answered: u64,
    meter_values_stored: u64,
    /// MeterValues answered in the busy window, and what the database grew by over it.
    busy_meter_values: u64,
    busy_db_growth: Option<u64>,
    /// The connected piles of each node (on nodes).
    piles_per_node: BTreeMap<String, u64>,
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn cpu_share(now: Duration, from: Duration, over: Duration) -> f64 {
    now.saturating_sub(from).as_secs_f64() / over.as_secs_f64() * 100.0
}

/// CPU shares: fleet / central, and PostgreSQL's where it was measured.
fn cpu_cell(fleet: f64, central: f64, postgres: Option<f64>) -> String {
    let pg = postgres.map_or(String::new(), |p| format!(" / {p:.0} %"));
    format!("{fleet:.0} % / {central:.0} %{pg}")
}

/// CPU time per CALL answered in the busy window, in µs (a share of one core over the window,
/// divided by the CALLs answered per second): fleet / central, and PostgreSQL's where measured.
fn per_call_cell(r: &Row) -> String {
    if r.busy_calls_per_s <= 0.0 {
        return "-".into();
    }
    let us = |share: f64| share / 100.0 * 1e6 / r.busy_calls_per_s;
    let pg = r
        .busy_cpu_postgres
        .map_or(String::new(), |p| format!(" / {:.0}", us(p)));
    format!(
        "{:.0} / {:.0}{pg}",
        us(r.busy_cpu_fleet),
        us(r.busy_cpu_central)
    )
}

/// The database's growth over the busy window per MeterValues answered in it (everything else
/// the window wrote, transactions, statuses and their log, counted against them too).
fn disk_cell(r: &Row) -> String {
    match r.busy_db_growth {
        Some(bytes) if r.busy_meter_values > 0 => {
            format!("{:.0}", bytes as f64 / r.busy_meter_values as f64)
        }
        _ => "-".into(),
    }
}

fn per_node_cell(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "-".into();
    }
    let cells: Vec<String> = counts.iter().map(|(n, c)| format!("{n}: {c}")).collect();
    cells.join(", ")
}

fn print_table(rows: &[Row]) {
    println!(
        "| central | nodes | piles | fleet processes | sample interval (s) | booted | boot (s) | fleet KiB/pile | central KiB/conn | idle CPU fleet/central(/PostgreSQL) | busy CALLs/s | busy frames/s | busy CPU fleet/central(/PostgreSQL) | CPU µs per CALL fleet/central(/PostgreSQL) | p50 / p99 (ms) | database bytes per MeterValues | MeterValues answered / stored | piles per node |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {} | {} | {} / {} | {} | {} / {} | {} |",
            r.central,
            r.nodes,
            r.piles,
            r.fleets,
            r.sample_interval,
            r.booted,
            opt(r.boot_s, 1),
            r.fleet_kib_per_pile,
            r.central_kib_per_conn,
            cpu_cell(r.idle_cpu_fleet, r.idle_cpu_central, r.idle_cpu_postgres),
            r.busy_calls_per_s,
            r.busy_frames_per_s,
            cpu_cell(r.busy_cpu_fleet, r.busy_cpu_central, r.busy_cpu_postgres),
            per_call_cell(r),
            opt(r.p50_ms, 1),
            opt(r.p99_ms, 1),
            disk_cell(r),
            r.meter_values_answered,
            r.meter_values_stored,
            per_node_cell(&r.piles_per_node),
        );
    }
}

async fn post_json(client: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<Value> {
    let text = client
        .post(url)
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(body.to_string())
        .send()
        .await?
        .text()
        .await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs the fleet against `central` with `n` piles; the central is stopped (and its schema
/// dropped) whatever happens.
async fn run_one(args: &BenchArgs, central: Central, n: usize) -> anyhow::Result<Row> {
    let dir = args.work.join(format!("{}-{n}", central.short()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut server = central.start(&dir, n).await?;
    let row = measure(args, &central, &server, &dir, n).await;
    // Every MeterValues a pile saw answered must be in the central's database.
    let stored = server.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
    let mut row = row?;
    row.meter_values_stored = stored;
    Ok(row)
}

/// The measurements of one run, until the fleet is stopped.
async fn measure(
    args: &BenchArgs,
    central: &Central,
    server: &Server,
    dir: &Path,
    n: usize,
) -> anyhow::Result<Row> {
    let client = reqwest::Client::new();
    let per_fleet = args
        .piles_per_fleet
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or_else(|| fleets::piles_per_process(fleets::soft_file_limit()));
    let shares = fleets::split(n, per_fleet);
    let mut row = Row {
        central: central.name(),
        nodes: server.nodes(),
        fleets: shares.len(),
        piles: n,
        sample_interval: args.sample_interval,
        ..Row::default()
    };
    if !matches!(central, Central::Peer { .. }) {
        post_json(
            &client,
            &server.api_url("/api/id-tags"),
            serde_json::json!({"id_tag": "BENCH", "status": "Accepted"}),
        )
        .await
        .context("registering the bench's idTag")?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let central_before = server.rss_kib();

    let csms = server.ocpp_url();
    let plan = fleets::FleetPlan {
        csms: &csms,
        dir,
        sample_interval: args.sample_interval,
        connect_rate: args.connect_rate,
    };
    let mut fleet = Fleets::start(&plan, &shares)?;
    // Booted: every pile's BootNotification accepted, in every process.
    loop {
        let summaries = fleet.summaries(&client).await.unwrap_or_default();
        row.booted = fleets::merge(&summaries)["booted"].as_u64().unwrap_or(0);
        if row.booted >= n as u64 {
            row.boot_s = Some(fleet.elapsed().as_secs_f64());
            break;
        }
        if fleet.elapsed() > BOOT_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} with {n} piles in {} fleet process(es): {} booted in {}",
        row.central,
        fleet.count(),
        row.booted,
        opt(row.boot_s, 1)
    );
    // Idle: after what follows a boot (the central reads each pile's configuration).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = Duration::from_secs(args.idle_seconds);
    let (f0, c0) = (fleet.cpu_time(), server.cpu());
    tokio::time::sleep(idle).await;
    row.idle_cpu_fleet = cpu_share(fleet.cpu_time(), f0, idle);
    (row.idle_cpu_central, row.idle_cpu_postgres) = server.cpu_share(&c0, idle);
    row.fleet_kib_per_pile = fleet.kib_per_pile();
    // Per connection: over those that were made (the open-file limit may stop the rest).
    row.central_kib_per_conn =
        server.rss_kib().saturating_sub(central_before) as f64 / row.booted.max(1) as f64;
    row.piles_per_node = server.piles_per_node(&client).await;

    // Busy: sessions most of the time, meter values every sample interval.
    fleet.set_scenario(&client, "busy").await?;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let before = fleets::merge(&fleet.summaries(&client).await?);
    let (f0, c0) = (fleet.cpu_time(), server.cpu());
    let db_before = server.db_bytes().await;
    let window = Duration::from_secs(args.busy_seconds);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let last = fleet.summaries(&client).await?;
    let after = fleets::merge(&last);
    let took = t0.elapsed();
    row.busy_db_growth = db_before
        .zip(server.db_bytes().await)
        .map(|(before, after)| after.saturating_sub(before));
    row.busy_cpu_fleet = cpu_share(fleet.cpu_time(), f0, took);
    (row.busy_cpu_central, row.busy_cpu_postgres) = server.cpu_share(&c0, took);
    let delta = |k: &str| {
        after[k]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[k].as_u64().unwrap_or(0)) as f64
    };
    row.busy_calls_per_s = delta("calls_answered") / took.as_secs_f64();
    row.busy_meter_values = delta("meter_values_answered") as u64;
    row.busy_frames_per_s = (delta("frames_sent") + delta("frames_received")) / took.as_secs_f64();
    let buckets = |v: &Value| -> Vec<u64> {
        v["latency_buckets"]
            .as_array()
            .map(|a| a.iter().map(|b| b.as_u64().unwrap_or(0)).collect())
            .unwrap_or_default()
    };
    let window_counts: Vec<u64> = buckets(&after)
        .iter()
        .zip(buckets(&before).iter().chain(std::iter::repeat(&0)))
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    row.p50_ms = ms(Latency::quantile(&window_counts, 0.5));
    row.p99_ms = ms(Latency::quantile(&window_counts, 0.99));

    // Stop the fleet before the central, so that what it saw answered is all it sent.
    row.meter_values_answered = fleet.stop(&last);
    Ok(row)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.counts.iter().all(|&n| n > 0),
        "--counts: every fleet size is at least 1"
    );
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next().map(str::to_owned))
            .unwrap_or_default();
        eprintln!("machine: {cores} cores, {mem}");
        let mut files = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit only writes the struct passed.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut files) };
        let nodes = args.nodes.map_or(1, |k| k as usize);
        if let Some(&n) = args
            .counts
            .iter()
            .find(|n| (n.div_ceil(nodes) as u64) + CENTRAL_FILE_MARGIN > files.rlim_max)
        {
            eprintln!(
                "the open-file hard limit is {}: {nodes} central process(es) cannot hold {n} \
                 connections here (each raises its limit as far as the system lets it; \
                 more --nodes share them out)",
                files.rlim_max
            );
        }
        let mut rows = Vec::new();
        for &n in &args.counts {
            let ours = match args.nodes {
                Some(k) => Central::Nodes(k as usize),
                None => Central::Ours {
                    data: args.work.join(format!("ours-{n}")).join("central"),
                },
            };
            let name = ours.name();
            match run_one(&args, ours, n).await {
                Ok(row) => rows.push(row),
                Err(e) => eprintln!("{name} with {n} piles: {e:#}"),
            }
            print_table(&rows);
            if let (Some(python), true) = (&args.python, args.peer_counts.contains(&n)) {
                let peer = Central::Peer {
                    python: python.clone(),
                };
                match run_one(&args, peer, n).await {
                    Ok(row) => rows.push(row),
                    Err(e) => eprintln!("PyPI ocpp central with {n} piles: {e:#}"),
                }
                print_table(&rows);
            }
        }
        let _ = std::fs::remove_dir_all(&args.work);
        for r in &rows {
            if r.meter_values_stored < r.meter_values_answered {
                anyhow::bail!(
                    "{} with {} piles: {} MeterValues answered but {} in the database",
                    r.central,
                    r.piles,
                    r.meter_values_answered,
                    r.meter_values_stored
                );
            }
        }
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_call_is_the_share_of_a_core_over_the_calls_answered() {
        let row = Row {
            busy_calls_per_s: 2_000.0,
            busy_cpu_fleet: 10.0,
            busy_cpu_central: 50.0,
            busy_cpu_postgres: Some(20.0),
            ..Row::default()
        };
        // 50 % of a core is 500 ms per second, over 2,000 CALLs: 250 µs each.
        assert_eq!(per_call_cell(&row), "50 / 250 / 100");
        let alone = Row {
            busy_cpu_postgres: None,
            ..row.clone()
        };
        assert_eq!(per_call_cell(&alone), "50 / 250");
        assert_eq!(per_call_cell(&Row::default()), "-");
    }

    #[test]
    fn disk_per_meter_values_is_the_growth_over_the_meter_values_of_the_window() {
        let row = Row {
            busy_meter_values: 4_000,
            busy_db_growth: Some(1_600_000),
            ..Row::default()
        };
        assert_eq!(disk_cell(&row), "400");
        let unmeasured = Row {
            busy_db_growth: None,
            ..row.clone()
        };
        assert_eq!(disk_cell(&unmeasured), "-");
        assert_eq!(disk_cell(&Row::default()), "-");
    }
}
