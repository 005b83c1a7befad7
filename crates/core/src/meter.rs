//! Turning meter readings into MeterValues for the measurands a configuration key lists.

use ocpp::{Measurand, MeterValue, Phase, ReadingContext, SampledValue, Timestamp, UnitOfMeasure};

use crate::measurands::{measurand_items, parse_item};

use crate::hardware::MeterReading;

fn number(v: f64) -> String {
    // One decimal, as a meter display shows it; whole numbers without a fraction.
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// One MeterValue with a sample per item of `list` (a measurand list such as
/// MeterValuesSampledData). `interval_wh` is the energy since the previous sample. The meter is
/// single-phase: phases other than L1 (and L1-N) read 0.
pub fn sample(
    list: &str,
    reading: &MeterReading,
    interval_wh: i64,
    context: ReadingContext,
    at: Timestamp,
) -> MeterValue {
    let mut temperature = 0;
    let sampled_value = measurand_items(list)
        .into_iter()
        .filter_map(parse_item)
        .map(|(measurand, phase)| {
            let on_l1 = phase
                .as_ref()
                .is_none_or(|p| matches!(p, Phase::L1 | Phase::L1N));
            let scale = |v: f64| if on_l1 { v } else { 0.0 };
            let (value, unit) = match measurand {
                Measurand::EnergyActiveImportRegister => {
                    (reading.energy_wh.to_string(), Some(UnitOfMeasure::Wh))
                }
                Measurand::EnergyActiveImportInterval => {
                    (interval_wh.to_string(), Some(UnitOfMeasure::Wh))
                }
                Measurand::PowerActiveImport => {
                    (number(scale(reading.power_w)), Some(UnitOfMeasure::W))
                }
                Measurand::PowerOffered => (
                    number(scale(reading.offered_a * reading.voltage_v)),
                    Some(UnitOfMeasure::W),
                ),
                Measurand::CurrentImport => {
                    (number(scale(reading.current_a)), Some(UnitOfMeasure::A))
                }
                Measurand::CurrentOffered => {
                    (number(scale(reading.offered_a)), Some(UnitOfMeasure::A))
                }
                Measurand::Voltage => (number(scale(reading.voltage_v)), Some(UnitOfMeasure::V)),
                // ERR 3.84: the unit of Frequency is Hertz, which 1.6 cannot name.
                Measurand::Frequency => (number(reading.frequency_hz), None),
                Measurand::Temperature => {
                    let v = reading
                        .temperatures_c
                        .get(temperature)
                        .copied()
                        .unwrap_or_default();
                    temperature += 1;
                    (number(v), Some(UnitOfMeasure::Celsius))
                }
                _ => ("0".into(), None),
            };
            SampledValue {
                value,
                context: Some(context.clone()),
                format: Some(ocpp::ValueFormat::Raw),
                measurand: Some(measurand),
                phase,
                location: Some(ocpp::Location::Outlet),
                unit,
            }
        })
        .collect();
    MeterValue {
        timestamp: at,
        sampled_value,
    }
}
