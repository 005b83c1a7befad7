//! `ocpile bench`: the central system and a fleet on this machine, at several fleet sizes, and
//! the same fleet against a minimal central on PyPI's `ocpp` library, side by side. For each
//! size: the time until every pile is booted, memory per idle pile (fleet) and per connection
//! (central) as the RSS growth over N, CPU of each process, the sustained message rate with
//! the `busy` scenario (meter values every `--sample-interval` seconds, 10 by default,
//! persisted in SQLite), the CALL-to-answer latency the piles see, and a check that every
//! answered MeterValues is in the database.

mod process;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use pile::telemetry::Latency;
use serde_json::Value;

pub use process::rss_kib;
use process::{cpu_time, Running};

const PEER: &str = include_str!("peer_central.py");
const TOKEN: &str = "bench-token";
/// How long the piles get to boot, at most.
const BOOT_LIMIT: Duration = Duration::from_secs(300);

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
    /// Piles started per second.
    #[arg(long, default_value_t = 5000.0)]
    connect_rate: f64,
    /// Where the runs keep their data (removed at the end).
    #[arg(long, default_value = "target/bench-fleet")]
    work: PathBuf,
}

/// One run's figures.
#[derive(Debug, Default, Clone)]
struct Row {
    central: &'static str,
    piles: usize,
    sample_interval: u32,
    booted: u64,
    boot_s: Option<f64>,
    fleet_kib_per_pile: f64,
    central_kib_per_conn: f64,
    idle_cpu_fleet: f64,
    idle_cpu_central: f64,
    busy_calls_per_s: f64,
    busy_frames_per_s: f64,
    busy_cpu_fleet: f64,
    busy_cpu_central: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    meter_values_answered: u64,
    meter_values_stored: u64,
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1000.0)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_table(rows: &[Row]) {
    println!(
        "| central | piles | sample interval (s) | booted | boot (s) | fleet KiB/pile | central KiB/conn | idle CPU fleet/central | busy CALLs/s | busy frames/s | busy CPU fleet/central | p50 / p99 (ms) | MeterValues answered / stored |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.0} % / {:.0} % | {:.0} | {:.0} | {:.0} % / {:.0} % | {} / {} | {} / {} |",
            r.central,
            r.piles,
            r.sample_interval,
            r.booted,
            opt(r.boot_s, 1),
            r.fleet_kib_per_pile,
            r.central_kib_per_conn,
            r.idle_cpu_fleet,
            r.idle_cpu_central,
            r.busy_calls_per_s,
            r.busy_frames_per_s,
            r.busy_cpu_fleet,
            r.busy_cpu_central,
            opt(r.p50_ms, 1),
            opt(r.p99_ms, 1),
            r.meter_values_answered,
            r.meter_values_stored,
        );
    }
}

async fn get_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let text = client.get(url).send().await?.text().await?;
    Ok(serde_json::from_str(&text)?)
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

/// The central under test: ours or the peer.
enum Central {
    Ours { data: PathBuf },
    Peer { python: PathBuf },
}

impl Central {
    fn name(&self) -> &'static str {
        match self {
            Central::Ours { .. } => "ocpile central",
            Central::Peer { .. } => "PyPI ocpp 2.x",
        }
    }

    /// Starts it; the process, its OCPP URL, and its database.
    fn start(&self, dir: &Path) -> anyhow::Result<(Running, String, PathBuf)> {
        match self {
            Central::Ours { data } => {
                let mut cmd = Command::new(std::env::current_exe()?);
                cmd.args(["central", "--listen", "127.0.0.1:0", "--admission", "open"])
                    .args(["--api-token", TOKEN, "--data"])
                    .arg(data)
                    .env("RUST_LOG", "warn");
                let central = Running::start(cmd, "ocpile central")?;
                let addr =
                    central.wait_for("ocpile central listening on ", Duration::from_secs(60))?;
                Ok((
                    central,
                    format!("ws://{addr}/ocpp/"),
                    data.join("central.db"),
                ))
            }
            Central::Peer { python } => {
                let script = dir.join("peer_central.py");
                std::fs::write(&script, PEER)?;
                let db = dir.join("peer.db");
                let mut cmd = Command::new(python);
                cmd.arg("-u").arg(&script).arg(&db);
                let central = Running::start(cmd, "the PyPI-ocpp central")?;
                let port = central.wait_for("PORT ", Duration::from_secs(60))?;
                Ok((central, format!("ws://127.0.0.1:{port}/ocpp/"), db))
            }
        }
    }
}

async fn count_rows(db: &Path) -> u64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let Ok(mut conn) = sqlx::SqliteConnection::connect(&url).await else {
        return 0;
    };
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM meter_values")
        .fetch_one(&mut conn)
        .await
        .map(|n| n as u64)
        .unwrap_or(0)
}

fn cpu_share(pid: u32, from: Duration, over: Duration) -> f64 {
    (cpu_time(pid).saturating_sub(from)).as_secs_f64() / over.as_secs_f64() * 100.0
}

async fn run_one(args: &BenchArgs, central: Central, n: usize) -> anyhow::Result<Row> {
    let dir = args.work.join(format!(
        "{}-{n}",
        if matches!(central, Central::Ours { .. }) {
            "ours"
        } else {
            "peer"
        }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let client = reqwest::Client::new();
    let (mut server, csms, db) = central.start(&dir)?;
    let mut row = Row {
        central: central.name(),
        piles: n,
        sample_interval: args.sample_interval,
        ..Row::default()
    };
    if let Central::Ours { .. } = central {
        let api = csms
            .replace("ws://", "http://")
            .replace("/ocpp/", "/api/id-tags");
        post_json(
            &client,
            &api,
            serde_json::json!({"id_tag": "BENCH", "status": "Accepted"}),
        )
        .await
        .context("registering the bench's idTag")?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let central_before = rss_kib(server.pid());

    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["fleet", "--count", &n.to_string(), "--csms", &csms])
        .arg("--state")
        .arg(dir.join("fleet"))
        .args(["--control", "127.0.0.1:0", "--log-kib", "1"])
        .args([
            "--id-tag",
            "BENCH",
            "--card-share",
            "1",
            "--sample-interval",
            &args.sample_interval.to_string(),
        ])
        .args(["--connect-rate", &args.connect_rate.to_string()])
        .env("RUST_LOG", "error");
    // Spread over eight source addresses: the kernel's search for a free source port grows
    // with the connections one address holds (half the fleet's CPU at 19,000 from one).
    cmd.args(["--bind", "127.0.0.2-127.0.0.9"]);
    let started = Instant::now();
    let mut fleet = Running::start(cmd, "ocpile fleet")?;
    let fleet_before: u64 = fleet
        .wait_for("fleet: memory before the piles: ", Duration::from_secs(60))?
        .trim_end_matches(" KiB")
        .parse()
        .unwrap_or(0);
    let control = fleet.wait_for("fleet control API listening on ", Duration::from_secs(120))?;
    let summary_url = format!("http://{control}/fleet");
    // Booted: every pile's BootNotification accepted.
    loop {
        let summary = get_json(&client, &summary_url).await.unwrap_or(Value::Null);
        row.booted = summary["booted"].as_u64().unwrap_or(0);
        if row.booted >= n as u64 {
            row.boot_s = Some(started.elapsed().as_secs_f64());
            break;
        }
        if started.elapsed() > BOOT_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} with {n} piles: {} booted in {}",
        row.central,
        row.booted,
        opt(row.boot_s, 1)
    );
    // Idle: after what follows a boot (the central reads each pile's configuration).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = Duration::from_secs(args.idle_seconds);
    let (f0, c0) = (cpu_time(fleet.pid()), cpu_time(server.pid()));
    tokio::time::sleep(idle).await;
    row.idle_cpu_fleet = cpu_share(fleet.pid(), f0, idle);
    row.idle_cpu_central = cpu_share(server.pid(), c0, idle);
    row.fleet_kib_per_pile = rss_kib(fleet.pid()).saturating_sub(fleet_before) as f64 / n as f64;
    // Per connection: over those that were made (the open-file limit may stop the rest).
    row.central_kib_per_conn =
        rss_kib(server.pid()).saturating_sub(central_before) as f64 / row.booted.max(1) as f64;

    // Busy: sessions most of the time, meter values every sample interval.
    post_json(
        &client,
        &format!("http://{control}/fleet/scenario"),
        serde_json::json!({"scenario": "busy"}),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(40)).await;
    let before = get_json(&client, &summary_url).await?;
    let (f0, c0) = (cpu_time(fleet.pid()), cpu_time(server.pid()));
    let window = Duration::from_secs(args.busy_seconds);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let after = get_json(&client, &summary_url).await?;
    let took = t0.elapsed();
    row.busy_cpu_fleet = cpu_share(fleet.pid(), f0, took);
    row.busy_cpu_central = cpu_share(server.pid(), c0, took);
    let delta = |k: &str| {
        after[k]
            .as_u64()
            .unwrap_or(0)
            .saturating_sub(before[k].as_u64().unwrap_or(0)) as f64
    };
    row.busy_calls_per_s = delta("calls_answered") / took.as_secs_f64();
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

    // Stop the fleet, then the central; every MeterValues a pile saw answered must be in
    // the central's database.
    fleet.interrupt(Duration::from_secs(60));
    let last = fleet
        .lines
        .try_iter()
        .filter(|l| l.starts_with('{'))
        .last()
        .and_then(|l| serde_json::from_str::<Value>(&l).ok());
    row.meter_values_answered = last
        .as_ref()
        .and_then(|s| s["meter_values_answered"].as_u64())
        .unwrap_or_else(|| after["meter_values_answered"].as_u64().unwrap_or(0));
    server.interrupt(Duration::from_secs(30));
    row.meter_values_stored = count_rows(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(row)
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
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
        if let Some(&n) = args
            .counts
            .iter()
            .find(|n| **n as u64 + 64 > files.rlim_max)
        {
            eprintln!(
                "the open-file hard limit is {}: a central or fleet process cannot hold {n} \
                 connections here (each raises its limit as far as the system lets it)",
                files.rlim_max
            );
        }
        let mut rows = Vec::new();
        for &n in &args.counts {
            let ours = Central::Ours {
                data: args.work.join(format!("ours-{n}")).join("central"),
            };
            match run_one(&args, ours, n).await {
                Ok(row) => rows.push(row),
                Err(e) => eprintln!("ocpile central with {n} piles: {e:#}"),
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
