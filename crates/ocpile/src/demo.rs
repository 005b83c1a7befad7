//! `ocpile demo`: the central system on an embedded SQLite database, a fleet of virtual piles
//! (the real pile core and host on simulated hardware, in this process, sharing one store)
//! with lively behaviour, and the dashboard. A second run resumes from the same data.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use central::store::{IdTagRow, WriteOp};
use pile::config::keys;
use sim::fleet::scenario::Dice;
use sim::fleet::{Fleet, FleetSpec};

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

/// The demo's site: its first piles share a grid connection that cannot give every EV all it
/// asks, so the allocation shows.
const SITE: &str = "Demo site";
/// How many of the first piles are on the site.
const SITE_PILES: usize = 4;
/// The site's capacity (A, single phase) and each connector's fail-safe.
const SITE_CAPACITY_A: f64 = 40.0;
const SITE_FAILSAFE_A: f64 = 6.0;

/// Creates the demo's site with its first piles, unless a run before did.
async fn prepare_site(central: &central::Central, ids: &[String]) -> anyhow::Result<()> {
    let repo = central.repo();
    if repo.sites().await?.iter().any(|s| s.name == SITE) {
        return Ok(());
    }
    let piles: Vec<&String> = ids.iter().take(SITE_PILES).collect();
    if piles.is_empty() {
        return Ok(());
    }
    let input: central::site::TermsInput = serde_json::from_value(serde_json::json!({
        "name": SITE, "capacity_a": SITE_CAPACITY_A, "failsafe_a": SITE_FAILSAFE_A,
    }))?;
    let terms = central::site::Terms::create(input)?;
    terms.site()?.check_connectors(piles.len())?;
    let now = chrono::Utc::now().timestamp_millis();
    let site = repo.create_site(&terms.to_row(0, now)).await?;
    for pile in piles {
        match repo.join_site(site, pile, None).await? {
            central::store::Joined::Added => {}
            other => anyhow::bail!("putting {pile} on the demo's site: {other:?}"),
        }
    }
    Ok(())
}

/// What the demo does with each of its piles.
#[derive(Default, Clone, Copy)]
struct DemoPile {
    charging: bool,
    faulted: bool,
}

/// Registers the demo's piles and cards, and stores the image, unless a run before did.
async fn prepare(central: &central::Central, ids: &[String]) -> anyhow::Result<()> {
    let known: Vec<String> = central
        .repo()
        .piles()
        .await?
        .into_iter()
        .map(|p| p.id)
        .collect();
    for id in ids.iter().filter(|id| !known.contains(id)) {
        central
            .writer()
            .write(WriteOp::RegisterPile {
                id: id.clone(),
                password_hash: None,
                security_profile: 0,
            })
            .await?;
    }
    for card in CARDS {
        central
            .writer()
            .write(WriteOp::PutIdTag(IdTagRow {
                id_tag: card.into(),
                status: "Accepted".into(),
                expiry_date: None,
                parent_id_tag: None,
            }))
            .await?;
    }
    prepare_site(central, ids).await?;
    if central.repo().images().await?.is_empty() {
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
fn step(fleet: &Fleet, piles: &mut [DemoPile], dice: &mut Dice) {
    let n = dice.below(piles.len() as u64) as usize;
    let (p, sim) = (&mut piles[n], &fleet.piles()[n].sim);
    if p.faulted {
        sim.clear_faults();
        p.faulted = false;
    } else if dice.below(12) == 0 {
        if sim.add_faults(&["cp_error".to_owned()]).is_ok() {
            p.faulted = true;
        }
    } else if p.charging {
        let card = CARDS[dice.below(CARDS.len() as u64) as usize];
        let _ = sim.card(Some(1), card);
        let _ = sim.unplug(1);
        p.charging = false;
    } else {
        let card = CARDS[dice.below(CARDS.len() as u64) as usize];
        let _ = sim.card(Some(1), card);
        let ev = sim::Ev {
            max_current: [10.0, 16.0, 32.0][dice.below(3) as usize],
            ..sim::Ev::default()
        };
        let _ = sim.plug_ev(1, ev);
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
        // The demo's piles are a fleet; one more, nobody registered, waits Pending in the
        // approval inbox.
        let mut spec = FleetSpec::new(0, &csms, args.data.join("fleet"));
        spec.names = ids.iter().cloned().chain(["DEMO-NEW".to_owned()]).collect();
        // Cards start and stop sessions; meter values every 10 s for the charts.
        spec.provision = vec![(keys::VENDOR_DIRECT_WORK_MODE.0, "false".into())];
        spec.sample_every(10);
        spec.log_budget = pile::logbook::DEFAULT_BUDGET;
        let fleet = Fleet::start(spec).context("starting the demo's piles")?;
        let mut piles = vec![DemoPile::default(); ids.len()];
        eprintln!("ocpile demo: {} virtual piles against the central system at {addr}", ids.len());
        eprintln!("dashboard: http://{addr}/?token={}", central.api_token());
        eprintln!(
            "API: http://{addr}/api (Authorization: Bearer {}); OCPP: ws://{addr}/ocpp/ID; Ctrl-C stops",
            central.api_token()
        );
        let seed = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1;
        let mut dice = Dice::new(seed);
        let until = (args.run_for > 0)
            .then(|| tokio::time::Instant::now() + Duration::from_secs(args.run_for));
        let mut every = tokio::time::interval(Duration::from_secs(3));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if !piles.is_empty() {
                        step(&fleet, &mut piles, &mut dice);
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
        // The piles close their connections (each within its write timeout); then the central
        // system stops.
        let _ = tokio::time::timeout(2 * pile::shell::WRITE_TIMEOUT, fleet.stop()).await;
        drop(running);
        eprintln!("ocpile demo: stopped (the data stays in {})", args.data.display());
        anyhow::Ok(())
    })
}
