//! The hardware behind the pile, as a trait: a real wallbox's drivers or the simulator
//! (`crates/sim`) implement it; the shell feeds what it reports to the core.

use std::future::Future;
use std::pin::Pin;

pub use pile_core::hardware::*;

pub type EventFuture<'a> = Pin<Box<dyn Future<Output = Option<HardwareEvent>> + Send + 'a>>;

pub trait Hardware: Send + 'static {
    /// Waits for the next change; `None` when the hardware is gone.
    fn next_event(&mut self) -> EventFuture<'_>;

    /// Carries out a command of the pile.
    fn command(&mut self, command: &HardwareCommand);

    /// Reads a connector's meter now. The host asks while energy flows through a connector,
    /// just before the core takes an input (so a sample, a meterStop or a limit sees the
    /// register of that instant), instead of the meter reporting on a clock of its own.
    /// Hardware that reports its meters only as [`HardwareEvent::Meter`] answers `None`.
    fn read_meter(&mut self, connector: u32) -> Option<MeterReading> {
        let _ = connector;
        None
    }
}

/// No hardware at all (a pile run without a simulator): nothing is reported, and there is no
/// relay, pilot, lock or buzzer to act on.
pub struct NoHardware;

impl Hardware for NoHardware {
    fn next_event(&mut self) -> EventFuture<'_> {
        Box::pin(std::future::pending())
    }

    fn command(&mut self, command: &HardwareCommand) {
        tracing::debug!(?command, "no hardware to carry out");
    }
}
