//! `ocpile pile`: one charge point against a central system.

use std::path::PathBuf;

use anyhow::Context;
use pile::config::{Factory, WebsocketSettings};
use pile::shell::{control_channel, run, PileSettings};
use pile::{Identity, Options};
use transport::tls::{client_config, TlsVersion};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Model {
    /// TLS 1.2 (the vendor's M3G2 also speaks TLS 1.0 and 1.1, which rustls does not implement).
    M3G2,
    /// TLS 1.2 and 1.3.
    M3G3,
}

#[derive(clap::Args)]
pub struct PileArgs {
    /// The serial number; also the identity until VendorChargePointName changes it.
    #[arg(long)]
    id: String,
    /// The central system, `ws://HOST:PORT/PATH/` or `wss://...`; the identity is appended.
    #[arg(long)]
    csms: String,
    /// Where the pile keeps its state (created if needed). Default: ./ocpile-state/<id>.
    #[arg(long)]
    state: Option<PathBuf>,
    /// The model reported in BootNotification (chargePointModel), with its TLS versions.
    #[arg(long, value_enum, default_value = "m3g3")]
    model: Model,
    /// How many connectors the pile has.
    #[arg(long, default_value_t = 1)]
    connectors: u32,
    /// HTTP Basic password (Security Profile 1); the user is the identity.
    #[arg(long)]
    password: Option<String>,
    /// PEM file of the CA that signed the central system's certificate (for wss://).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The chargePointVendor reported in BootNotification.
    #[arg(long, default_value = "ocpile")]
    vendor: String,
    /// Seconds that new server settings (VendorWebsocketSettings, VendorChargePointName,
    /// UrlHasServerToken) get to reach an accepted boot before the pile falls back to the last
    /// settings that worked; 0 switches the fallback off, as on the real pile.
    #[arg(long, default_value_t = 300)]
    settings_fallback: u64,
    /// `HOST:PORT=IP:PORT`: connect to this address whenever the settings name HOST:PORT, as
    /// curl's --resolve does (TLS still checks HOST). Repeatable.
    #[arg(long, value_parser = parse_resolve)]
    resolve: Vec<(String, u16, std::net::SocketAddr)>,
    /// Seconds a write to the central system may take; a central that stops reading fails the
    /// connection after this long and the pile reconnects (meanwhile it goes on).
    #[arg(long, default_value_t = 10)]
    write_timeout: u64,
    /// KiB of its own log (frames and events) the pile keeps for GetDiagnostics; the oldest
    /// records go first.
    #[arg(long, default_value_t = 1024)]
    log_kib: usize,
    /// Serve the local control port (plug, faults, network, local configuration, state) here,
    /// e.g. 127.0.0.1:8180.
    #[arg(long)]
    control: Option<std::net::SocketAddr>,
    /// An offline IC card installed at the factory (an idTag): accepted without the central
    /// system while the pile keeps its factory name (FAQ 3.2.2, 3.5). Repeatable.
    #[arg(long = "offline-card")]
    offline_cards: Vec<String>,
    /// The most current a connector offers (A).
    #[arg(long, default_value_t = 32.0)]
    rated_current: f64,
}

fn parse_resolve(s: &str) -> Result<(String, u16, std::net::SocketAddr), String> {
    let (name, addr) = s.split_once('=').ok_or("expected HOST:PORT=IP:PORT")?;
    let (host, port) = name
        .rsplit_once(':')
        .ok_or("expected HOST:PORT before '='")?;
    let port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    let addr = addr.parse().map_err(|_| format!("bad address {addr:?}"))?;
    Ok((host.to_owned(), port, addr))
}

pub fn run_pile(args: PileArgs) -> anyhow::Result<()> {
    let mut settings =
        WebsocketSettings::from_url(&args.csms).with_context(|| format!("--csms {}", args.csms))?;
    if let Some(password) = &args.password {
        anyhow::ensure!(
            !password.contains(','),
            "the password cannot contain a comma (VendorWebsocketSettings is comma-separated)"
        );
        settings.password = password.clone();
    }
    let (model, versions) = match args.model {
        Model::M3G2 => ("M3G2", vec![TlsVersion::Tls12]),
        Model::M3G3 => ("M3G3", vec![TlsVersion::Tls12, TlsVersion::Tls13]),
    };
    let tls = match &args.ca {
        Some(path) => {
            let pem =
                std::fs::read(path).with_context(|| format!("reading --ca {}", path.display()))?;
            Some(client_config(&pem, &versions, None)?)
        }
        None => None,
    };
    if settings.secure && tls.is_none() {
        anyhow::bail!("wss:// needs --ca with the central system's CA certificate");
    }
    let state_dir = args
        .state
        .unwrap_or_else(|| PathBuf::from("ocpile-state").join(&args.id));
    let settings = PileSettings {
        firmware_file: Some(state_dir.join("firmware.bin")),
        state_dir,
        factory: Factory {
            serial_number: args.id.clone(),
            connectors: args.connectors,
            settings,
            offline_cards: args.offline_cards,
        },
        identity: Identity {
            vendor: args.vendor,
            model: model.into(),
            firmware_version: env!("CARGO_PKG_VERSION").into(),
            meter_type: Some("ocpile simulated meter".into()),
            meter_serial_number: Some(format!("{}-M", args.id)),
        },
        options: Options {
            settings_fallback: (args.settings_fallback > 0)
                .then(|| std::time::Duration::from_secs(args.settings_fallback)),
            rated_current_a: args.rated_current,
            ..Options::default()
        },
        tls,
        tls_versions: versions,
        resolve: args.resolve,
        write_timeout: std::time::Duration::from_secs(args.write_timeout.max(1)),
        log_budget: args.log_kib.saturating_mul(1024),
        bind: None,
        telemetry: None,
    };
    anyhow::ensure!(
        args.rated_current > 0.0,
        "--rated-current must be more than 0"
    );
    let control_addr = args.control;
    let connectors = args.connectors;
    // The simulated meters go on from the registers last recorded, as a real meter would.
    let registers = pile::store::StateStore::open(&settings.state_dir)?
        .load()?
        .map(|d| d.registers().clone())
        .unwrap_or_default();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (sim, hardware) = sim::simulated_with(connectors, &registers);
        let (handle, control) = control_channel();
        if let Some(addr) = control_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--control {addr}"))?;
            let bound = listener
                .local_addr()
                .with_context(|| format!("--control {addr}"))?;
            // Printed, so that a caller that asked for port 0 learns the port.
            eprintln!("control port listening on {bound}");
            tokio::spawn(sim::control::serve(listener, handle, sim));
        }
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        run(settings, Box::new(hardware), control, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
