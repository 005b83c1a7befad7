//! `ocpile fleet`: many virtual piles in one process against a central system.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sim::fleet::{control, Fleet, FleetSpec, Scenario};
use transport::tls::{client_config, TlsVersion};

#[derive(clap::Args)]
pub struct FleetArgs {
    /// How many piles.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// The central system's OCPP URL without the identity, e.g. ws://127.0.0.1:8180/ocpp/.
    #[arg(long)]
    csms: String,
    /// The piles' identities (and serial numbers) are this prefix and a number: FLEET-00001...
    #[arg(long, default_value = "FLEET-")]
    id_prefix: String,
    /// Connectors per pile.
    #[arg(long, default_value_t = 1)]
    connectors: u32,
    /// Piles started per second.
    #[arg(long, default_value_t = 1000.0)]
    connect_rate: f64,
    /// idle (boot, heartbeats, statuses), daily (a few sessions a day per connector, cards and
    /// plug-and-charge, a fault now and then) or busy (sessions most of the time).
    #[arg(long, default_value = "idle")]
    scenario: Scenario,
    /// Source addresses for the connections, taken in turn: a range (127.0.0.2-127.0.0.9) or
    /// a comma-separated list. Each address has its own 64k ports.
    #[arg(long, value_parser = parse_bind)]
    bind: Option<BindAddrs>,
    /// Where the fleet keeps its piles' state (one shared store, fleet.redb).
    #[arg(long, default_value = "./ocpile-fleet")]
    state: PathBuf,
    /// Serve the control API (every pile's control port under /piles/{id}, fleet-wide
    /// actions under /fleet) here.
    #[arg(long)]
    control: Option<SocketAddr>,
    /// The central system's CA certificate (PEM), for wss://.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The piles' password (Security Profile 1).
    #[arg(long)]
    password: Option<String>,
    /// An idTag the scenario shows as a card (the central must accept it). Repeatable.
    #[arg(long = "id-tag")]
    id_tags: Vec<String>,
    /// With --id-tag: the share of piles that take cards (plug-and-charge off there); the
    /// others charge by plug-and-charge, their serial number as idTag.
    #[arg(long, default_value_t = 2.0 / 3.0)]
    card_share: f64,
    /// MeterValueSampleInterval set at every pile at its start (seconds).
    #[arg(long)]
    sample_interval: Option<u32>,
    /// KiB of log each pile keeps for GetDiagnostics.
    #[arg(long, default_value_t = 2)]
    log_kib: usize,
    /// The scenario's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    run_for: u64,
}

/// The addresses of `--bind` (one argument, a range or a list).
#[derive(Debug, Clone)]
pub struct BindAddrs(Vec<IpAddr>);

fn parse_bind(s: &str) -> Result<BindAddrs, String> {
    parse_addrs(s).map(BindAddrs)
}

fn parse_addrs(s: &str) -> Result<Vec<IpAddr>, String> {
    if let Some((from, to)) = s.split_once('-') {
        let from: Ipv4Addr = from.parse().map_err(|_| format!("bad address {from:?}"))?;
        let to: Ipv4Addr = to.parse().map_err(|_| format!("bad address {to:?}"))?;
        let (a, b) = (u32::from(from), u32::from(to));
        if a > b || b - a > 65_535 {
            return Err(format!(
                "{s}: a range from low to high, at most 65536 addresses"
            ));
        }
        return Ok((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect());
    }
    s.split(',')
        .map(|a| a.trim().parse().map_err(|_| format!("bad address {a:?}")))
        .collect()
}

fn line(fleet: &Fleet, rate: f64) -> String {
    let c = fleet.telemetry.counts();
    format!(
        "connected {} accepted {} charging {} | {:.0} msg/s | failures {} reconnects {}",
        c.connected,
        c.accepted,
        c.charging,
        rate,
        c.failures,
        c.connections.saturating_sub(c.booted)
    )
}

pub fn run(args: FleetArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be at least 1");
    anyhow::ensure!(
        args.connect_rate > 0.0,
        "--connect-rate must be more than 0"
    );
    let tls = match &args.ca {
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("reading --ca {}", path.display()))?;
            Some(client_config(
                &pem,
                &[TlsVersion::Tls12, TlsVersion::Tls13],
                None,
            )?)
        }
        None => None,
    };
    crate::limits::raise_file_limit(args.count as u64 + 256);
    let mut spec = FleetSpec::new(args.count, &args.csms, &args.state);
    spec.id_prefix = args.id_prefix;
    spec.connectors = args.connectors;
    spec.connect_rate = args.connect_rate;
    spec.scenario = args.scenario;
    spec.bind = args.bind.map(|b| b.0).unwrap_or_default();
    spec.tls = tls;
    spec.password = args.password;
    spec.id_tags = args.id_tags;
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.card_share),
        "--card-share is between 0 and 1"
    );
    spec.card_share = args.card_share;
    if let Some(seconds) = args.sample_interval {
        spec.sample_every(seconds);
    }
    spec.log_budget = args.log_kib.saturating_mul(1024);
    spec.seed = args.seed;
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        // For `ocpile bench`: what the process holds before any pile exists.
        eprintln!(
            "fleet: memory before the piles: {} KiB",
            crate::bench::rss_kib(std::process::id())
        );
        let fleet = Fleet::start(spec).context("starting the fleet")?;
        if let Some(addr) = args.control {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--control {addr}"))?;
            let bound = listener.local_addr()?;
            eprintln!("fleet control API listening on {bound}");
            tokio::spawn(control::serve(listener, fleet.clone()));
        }
        let stop = async {
            if args.run_for > 0 {
                tokio::time::sleep(Duration::from_secs(args.run_for)).await;
            } else {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        report(&fleet, stop).await;
        fleet.stop().await;
        println!("{}", control::summary(&fleet));
        anyhow::Ok(())
    })
}

/// Hands the memory freed since (the connection handshakes of a boot burst, mostly) back to
/// the system: glibc's allocator keeps it otherwise, and the process's resident size with it.
fn return_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A progress bar until every pile is booted, then a summary line each second, until `stop`.
async fn report(fleet: &Arc<Fleet>, stop: impl std::future::Future<Output = ()>) {
    use indicatif::{ProgressBar, ProgressStyle};
    let total = fleet.piles().len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} booted {pos}/{len} {wide_bar} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Without a terminal the bar draws nothing: a plain line every ten seconds instead.
    let plain = bar.is_hidden();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last = fleet.telemetry.counts();
    let mut booted_all = false;
    let mut seconds = 0u64;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut stop => break,
        }
        seconds += 1;
        let now = fleet.telemetry.counts();
        let frames = (now.frames_sent + now.frames_received)
            .saturating_sub(last.frames_sent + last.frames_received);
        last = now;
        let text = line(fleet, frames as f64);
        if !booted_all {
            bar.set_position(now.booted.min(total));
            bar.set_message(text.clone());
            if now.booted >= total {
                booted_all = true;
                return_free_memory();
                bar.finish_and_clear();
                eprintln!(
                    "all {total} piles booted and accepted in {:.1} s",
                    bar.elapsed().as_secs_f64()
                );
            }
        } else if !plain {
            eprint!("\r{text}\x1b[K");
        }
        if seconds % 60 == 0 {
            return_free_memory();
        }
        if plain && seconds % 10 == 0 {
            eprintln!("{text}");
        }
    }
    bar.finish_and_clear();
    if !plain {
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_takes_a_range_or_a_list() {
        let range = parse_addrs("127.0.0.2-127.0.0.9").unwrap();
        assert_eq!(range.len(), 8);
        assert_eq!(range[7], "127.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(parse_addrs("127.0.0.2, ::1").unwrap().len(), 2);
        assert!(parse_addrs("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_addrs("nope").is_err());
    }
}
