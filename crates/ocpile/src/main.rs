//! `ocpile`: the command line of the OCPP 1.6J pile, fleet and central system.

mod bench;
mod central_cmd;
mod demo;
mod fleet_cmd;
mod frame_cmd;
mod limits;
mod pile_cmd;
mod send_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ocpile",
    version,
    about = "OCPP 1.6J charge point, fleet and central system"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the central system and a fleet on this machine at several sizes, beside a
    /// minimal central on PyPI's ocpp library, and print the table.
    Bench(Box<bench::BenchArgs>),
    /// Run the central system: OCPP at /ocpp/{identity}, the REST API at /api, the dashboard
    /// at /, firmware images at /firmware, and /metrics.
    Central(Box<central_cmd::CentralArgs>),
    /// Run the central system (SQLite in --data) with a fleet of virtual piles that charge
    /// with cards and now and then fault, one more pile waiting for approval, and a firmware
    /// image ready for a campaign; prints the dashboard's link. A second run resumes.
    Demo(demo::DemoArgs),
    /// Run many virtual piles (the real pile core on simulated hardware) in one process
    /// against a central system, with one shared store and a control API.
    Fleet(Box<fleet_cmd::FleetArgs>),
    /// Decode one OCPP-J frame (argument or standard input) and show how it is classified:
    /// the typed message, tolerated deviations, or the CALLERROR it would be answered with.
    Frame(frame_cmd::FrameArgs),
    /// Run one charge point against a central system; its state is kept in --state.
    Pile(Box<pile_cmd::PileArgs>),
    /// Send a command to a pile through the central system's API and print its answer.
    Send(send_cmd::SendArgs),
}

/// Whether the log is coloured: only on a terminal, and not when NO_COLOR is set (to anything
/// but the empty string); a file or a pipe gets plain text.
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo runs many piles in one process: their connection notes would drown its
    // output, so by default it logs warnings only (RUST_LOG overrides).
    let default = if matches!(
        cli.command,
        Command::Demo(_) | Command::Fleet(_) | Command::Bench(_)
    ) {
        "warn"
    } else {
        "info"
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Bench(args) => bench::run(*args),
        Command::Central(args) => central_cmd::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Fleet(args) => fleet_cmd::run(*args),
        Command::Frame(args) => frame_cmd::run(args),
        Command::Pile(args) => pile_cmd::run_pile(*args),
        Command::Send(args) => send_cmd::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn the_log_is_coloured_on_a_terminal_only() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())), "NO_COLOR");
        assert!(!colour(false, None), "a file or a pipe");
        assert!(!colour(false, Some("1".into())));
    }
}
