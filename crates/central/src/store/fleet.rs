//! What the fleet's pages ask the store: a filter of the pile list, the fleet's tallies, and the
//! energy register a meter value reports.

use serde_json::Value;

use super::model::{MeterSample, Millis};

/// Which piles a page lists; every criterion given must hold. The database applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PileFilter {
    /// A connector of the pile has this OCPP ChargePointStatus (`Available`, `Faulted`, ...).
    pub status: Option<String>,
    /// `Accepted`, `Pending` or `Rejected`.
    pub registration: Option<String>,
    /// The model of the last BootNotification, exactly.
    pub model: Option<String>,
    /// The firmware version of the last BootNotification, exactly.
    pub firmware: Option<String>,
    /// Connected to this central system now (true) or not (false).
    pub online: Option<bool>,
    /// A connector of the pile is Faulted or reports an errorCode other than NoError (true), or
    /// none does (false).
    pub faulted: Option<bool>,
    /// Text found, case-insensitively, in the identity, vendor, model, serial number or firmware
    /// version.
    pub text: Option<String>,
}

/// A name and how many rows have it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Tally {
    pub name: String,
    pub count: i64,
}

/// The fleet at a glance, as the store counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetCounts {
    pub piles: i64,
    /// Piles with a live connection (the `connection` column).
    pub online: i64,
    pub registration: Vec<Tally>,
    pub models: Vec<Tally>,
    pub firmware: Vec<Tally>,
    /// Connectors by OCPP status.
    pub connector_status: Vec<Tally>,
    /// Connectors by OCPP errorCode, NoError left out.
    pub error_codes: Vec<Tally>,
    /// Connectors by vendorErrorCode (the FAQ 3.6 bits, decoded by the API).
    pub vendor_error_codes: Vec<Tally>,
    pub running_transactions: i64,
    /// The energy of the transactions that stopped since the given time, and of the running
    /// ones so far (their last register reading minus their meter start), in Wh.
    pub energy_wh: i64,
}

/// The Energy.Active.Import.Register reading (Wh) of one MeterValue element as stored (its
/// sampledValue array as JSON): a sampled value without a measurand is that register (OCPP 1.6
/// default); kWh is scaled; per-phase and signed values are left out.
pub fn energy_register_wh(sampled: &str) -> Option<i64> {
    let values: Vec<Value> = serde_json::from_str(sampled).ok()?;
    values.iter().rev().find_map(|sv| {
        let measurand = sv["measurand"]
            .as_str()
            .unwrap_or("Energy.Active.Import.Register");
        if measurand != "Energy.Active.Import.Register"
            || !sv["phase"].is_null()
            || sv["format"] == "SignedData"
        {
            return None;
        }
        let value: f64 = sv["value"].as_str()?.trim().parse().ok()?;
        let scale = match sv["unit"].as_str().unwrap_or("Wh") {
            "Wh" => 1.0,
            "kWh" => 1000.0,
            _ => return None,
        };
        let wh = value * scale;
        wh.is_finite().then(|| wh.round() as i64)
    })
}

/// The latest register reading of a set of meter values: its time and Wh.
pub fn last_register(samples: &[MeterSample]) -> Option<(Millis, i64)> {
    samples
        .iter()
        .filter_map(|s| energy_register_wh(&s.sampled).map(|wh| (s.time, wh)))
        .max_by_key(|(time, _)| *time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_is_read_from_the_sampled_values() {
        assert_eq!(energy_register_wh(r#"[{"value":"1500"}]"#), Some(1500));
        assert_eq!(
            energy_register_wh(
                r#"[{"value":"7.2","measurand":"Power.Active.Import","unit":"kW"},
                    {"value":"1.25","measurand":"Energy.Active.Import.Register","unit":"kWh"}]"#
            ),
            Some(1250)
        );
        assert_eq!(
            energy_register_wh(
                r#"[{"value":"400","measurand":"Energy.Active.Import.Register","phase":"L1"}]"#
            ),
            None
        );
        assert_eq!(
            energy_register_wh(r#"[{"value":"12","measurand":"Voltage"}]"#),
            None
        );
        assert_eq!(energy_register_wh(r#"[{"value":"x"}]"#), None);
        assert_eq!(energy_register_wh("not json"), None);
    }

    #[test]
    fn the_latest_reading_wins() {
        let sample = |time, sampled: &str| MeterSample {
            time,
            sampled: sampled.into(),
        };
        let samples = [
            sample(3_000, r#"[{"value":"300"}]"#),
            sample(9_000, r#"[{"value":"5","measurand":"Voltage"}]"#),
            sample(1_000, r#"[{"value":"100"}]"#),
        ];
        assert_eq!(last_register(&samples), Some((3_000, 300)));
        assert_eq!(last_register(&samples[1..2]), None);
    }
}
