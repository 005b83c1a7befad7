//! Measurand lists (MeterValuesSampledData and the like): their items, and which measurands
//! this pile's meter provides. Shared by the configuration (validation) and the meter (samples).

use ocpp::{Measurand, Phase};

/// The measurands this pile's meter provides; a measurand list naming another is refused.
pub const SUPPORTED: &[Measurand] = &[
    Measurand::EnergyActiveImportRegister,
    Measurand::EnergyActiveImportInterval,
    Measurand::PowerActiveImport,
    Measurand::PowerOffered,
    Measurand::CurrentImport,
    Measurand::CurrentOffered,
    Measurand::Voltage,
    Measurand::Frequency,
    Measurand::Temperature,
];

/// Reads `measurand[.phase]`.
pub fn parse_item(item: &str) -> Option<(Measurand, Option<Phase>)> {
    if let Some(m) = Measurand::from_wire(item) {
        return Some((m, None));
    }
    let (m, phase) = item.rsplit_once('.')?;
    Some((Measurand::from_wire(m)?, Some(Phase::from_wire(phase)?)))
}

/// The items of a measurand list (an empty value has none).
pub fn measurand_items(value: &str) -> Vec<&str> {
    if value.is_empty() {
        Vec::new()
    } else {
        value.split(',').collect()
    }
}

/// A measurand the meter provides, optionally with a phase.
pub fn is_supported(item: &str) -> bool {
    parse_item(item).is_some_and(|(m, _)| SUPPORTED.contains(&m))
}
