//! `ocpile demo`: the central system on an embedded SQLite database, virtual piles of ours
//! (the real pile core and host on simulated hardware, in this process) with lively behaviour,
//! and the dashboard. A second run resumes from the same data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use central::store::{IdTagRow, WriteOp};
use pile::config::{keys, Factory};
use pile::shell::{control_channel, PileHandle, PileSettings};
use pile::{Identity, Options};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// How many virtual piles (one more waits in the approval inbox).
    #[arg(long, default_value_t = 20)]
    piles: u32,
    /// Where the central system (OCPP, API, dashboard) listens.
    #[arg(long, default_value = "127.0.0.1:8180")]
    listen: SocketAddr,
    /// The data directory: the central's database, token and images, the piles' state.
    #[arg(long, default_value = "./ocpile-data")]
    data: PathBuf,
    /// Stop after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    run_for: u64,
}

/// The cards of the demo, accepted by the central system.
const CARDS: [&str; 4] = ["DEMO-CARD-1", "DEMO-CARD-2", "DEMO-CARD-3", "DEMO-CARD-4"];
/// The image ready for a campaign (the FAQ's ST MCU example name; its content is filler).
const IMAGE: &str = "XSmart.V2.0.110(M3G31H)@7KW.EVPro.070";

/// A small, seedable random number generator for the demo's choices (xorshift64).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One virtual pile of the demo and what the demo does with it.
struct DemoPile {
    sim: sim::SimHandle,
    charging: bool,
    faulted: bool,
}

fn pile_settings(id: &str, data: &std::path::Path, csms: &str) -> anyhow::Result<PileSettings> {
    Ok(PileSettings {
        state_dir: data.join("piles").join(id),
        factory: Factory {
            serial_number: id.to_owned(),
            connectors: 1,
            settings: vendor::WebsocketSettings::from_url(csms)?,
            offline_cards: Vec::new(),
        },
        identity: Identity {
            vendor: "ocpile".into(),
            model: "M3G3".into(),
            firmware_version: env!("CARGO_PKG_VERSION").into(),
            meter_type: Some("ocpile simulated meter".into()),
            meter_serial_number: Some(format!("{id}-M")),
        },
        options: Options::default(),
        tls: None,
        resolve: Vec::new(),
        write_timeout: pile::shell::WRITE_TIMEOUT,
        log_budget: pile::logbook::DEFAULT_BUDGET,
        bind: None,
        telemetry: None,
    })
}

/// Starts one pile in this process; its handles.
fn start_pile(
    id: &str,
    data: &std::path::Path,
    csms: &str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(PileHandle, sim::SimHandle, tokio::task::JoinHandle<()>)> {
    let settings = pile_settings(id, data, csms)?;
    let registers = pile::store::StateStore::open(&settings.state_dir)?
        .load()?
        .map(|d| d.registers)
        .unwrap_or_default();
    let (sim, hardware) = sim::simulated_with(1, &registers);
    let (handle, control) = control_channel();
    let id = id.to_owned();
    let task = tokio::spawn(async move {
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = pile::shell::run(settings, Box::new(hardware), control, shutdown).await {
            tracing::error!("{id}: {e}");
        }
    });
    Ok((handle, sim, task))
}

/// Registers the demo's piles and cards, and stores the image, unless a run before did.
async fn prepare(central: &central::Central, ids: &[String]) -> anyhow::Result<()> {
    let known: Vec<String> = central
        .repo
        .piles()
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    for id in ids.iter().filter(|id| !known.contains(id)) {
        central
            .writer
            .write(WriteOp::RegisterPile {
                id: id.clone(),
                password_hash: None,
            })
            .await?;
    }
    for card in CARDS {
        central
            .writer
            .write(WriteOp::PutIdTag(IdTagRow {
                id_tag: card.into(),
                status: "Accepted".into(),
                expiry_date: None,
                parent_id_tag: None,
            }))
            .await?;
    }
    if central.repo.images().await?.is_empty() {
        let body: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
        central::firmware::store(
            central,
            central::firmware::NewImage {
                name: IMAGE.into(),
                target: None,
                version: Some(IMAGE.into()),
                model: None,
            },
            body.into(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("storing the demo's firmware image: {}", e.1))?;
    }
    Ok(())
}

/// One step of the demo's life: a session starts or ends somewhere, now and then a fault.
fn step(piles: &mut [DemoPile], dice: &mut Dice) {
    let n = piles.len() as u64;
    let p = &mut piles[dice.below(n) as usize];
    if p.faulted {
        p.sim.clear_faults();
        p.faulted = false;
    } else if dice.below(12) == 0 {
        if p.sim.add_faults(&["cp_error".to_owned()]).is_ok() {
            p.faulted = true;
        }
    } else if p.charging {
        let card = CARDS[dice.below(CARDS.len() as u64) as usize];
        let _ = p.sim.card(Some(1), card);
        let _ = p.sim.unplug(1);
        p.charging = false;
    } else {
        let card = CARDS[dice.below(CARDS.len() as u64) as usize];
        let _ = p.sim.card(Some(1), card);
        let ev = sim::Ev {
            max_current: [10.0, 16.0, 32.0][dice.below(3) as usize],
            ..sim::Ev::default()
        };
        let _ = p.sim.plug_ev(1, ev);
        p.charging = true;
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async move {
        let mut options = central::Options::new(&args.data);
        options.listen = args.listen;
        options.admission = central::Admission::Approve;
        let running = central::server::start(options)
            .await
            .context("starting the central system")?;
        let addr = running.local_addr;
        let central = running.central.clone();
        let ids: Vec<String> = (1..=args.piles).map(|n| format!("DEMO-{n:02}")).collect();
        prepare(&central, &ids).await?;
        let csms = format!("ws://{addr}/ocpp/");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut piles = Vec::new();
        let mut tasks = Vec::new();
        for id in &ids {
            let (handle, sim, task) = start_pile(id, &args.data, &csms, stop_rx.clone())?;
            tasks.push(task);
            // Cards start and stop sessions; meter values every 10 s for the charts.
            let _ = handle.provision(keys::VENDOR_DIRECT_WORK_MODE.0, "false").await;
            let _ = handle.provision(keys::METER_VALUE_SAMPLE_INTERVAL.0, "10").await;
            piles.push(DemoPile {
                sim,
                charging: false,
                faulted: false,
            });
        }
        // One pile nobody registered: it waits, Pending, in the approval inbox.
        let (_, _, task) = start_pile("DEMO-NEW", &args.data, &csms, stop_rx.clone())?;
        tasks.push(task);
        eprintln!("ocpile demo: {} virtual piles against the central system at {addr}", ids.len());
        eprintln!("dashboard: http://{addr}/?token={}", central.token);
        eprintln!(
            "API: http://{addr}/api (Authorization: Bearer {}); OCPP: ws://{addr}/ocpp/ID; Ctrl-C stops",
            central.token
        );
        let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1;
        let mut dice = Dice(seed);
        let until = (args.run_for > 0)
            .then(|| tokio::time::Instant::now() + Duration::from_secs(args.run_for));
        let mut every = tokio::time::interval(Duration::from_secs(3));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if !piles.is_empty() {
                        step(&mut piles, &mut dice);
                    }
                }
                _ = tokio::signal::ctrl_c() => break,
                _ = async {
                    match until {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => break,
            }
        }
        eprintln!("ocpile demo: stopping");
        let _ = stop_tx.send(true);
        // The piles close their connections (each within its write timeout); then the central
        // system stops.
        for task in tasks {
            let _ = tokio::time::timeout(pile::shell::WRITE_TIMEOUT, task).await;
        }
        drop(running);
        eprintln!("ocpile demo: stopped (the data stays in {})", args.data.display());
        anyhow::Ok(())
    })
}
