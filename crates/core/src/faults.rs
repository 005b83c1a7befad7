//! Hardware faults and how OEM_FaultMask and OEM_FunctionMask decide what they do
//! (FAQ 3.6, 3.12, 3.13).

use std::collections::BTreeSet;

use ocpp::ChargePointErrorCode;
use serde::{Deserialize, Serialize};

/// A fault the hardware can detect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    Ground,
    /// The control pilot's -12 V (diode) check failed.
    CpDiode,
    CpError,
    RelaySticking,
    OverTemperature,
    Overcurrent,
    Overvoltage,
    Undervoltage,
    LeakageSelfTest,
    Leakage,
    Flash,
    AuxiliaryProcessor,
    /// The socket's cable lock does not move: an unlock fails (ConnectorLockFailure, a warning).
    LockStuck,
}

/// What a detected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// Reported, and the pile cannot charge: Faulted.
    Stop,
    /// Charging is suspended and resumes when the fault clears (FAQ 3.12 bit 1).
    Suspend,
    /// Reported as a warning; the status does not change.
    Warn,
}

impl Fault {
    pub const ALL: [Fault; 13] = [
        Fault::Ground,
        Fault::CpDiode,
        Fault::CpError,
        Fault::RelaySticking,
        Fault::OverTemperature,
        Fault::Overcurrent,
        Fault::Overvoltage,
        Fault::Undervoltage,
        Fault::LeakageSelfTest,
        Fault::Leakage,
        Fault::Flash,
        Fault::AuxiliaryProcessor,
        Fault::LockStuck,
    ];

    /// The name used by the control port (`relay_sticking`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Fault::Ground => "ground",
            Fault::CpDiode => "cp_diode",
            Fault::CpError => "cp_error",
            Fault::RelaySticking => "relay_sticking",
            Fault::OverTemperature => "over_temperature",
            Fault::Overcurrent => "overcurrent",
            Fault::Overvoltage => "overvoltage",
            Fault::Undervoltage => "undervoltage",
            Fault::LeakageSelfTest => "leakage_self_test",
            Fault::Leakage => "leakage",
            Fault::Flash => "flash",
            Fault::AuxiliaryProcessor => "auxiliary_processor",
            Fault::LockStuck => "lock_stuck",
        }
    }

    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The vendorErrorCode bit of FAQ 3.6, for the faults its table lists.
    pub fn vendor_bit(self) -> Option<u32> {
        use oem::error_codes as e;
        match self {
            Fault::CpDiode => Some(e::CP_MINUS_12V.bit),
            Fault::Flash => Some(e::FLASH.bit),
            Fault::AuxiliaryProcessor => Some(e::AUXILIARY_PROCESSOR.bit),
            Fault::CpError => Some(e::CP_ERROR.bit),
            Fault::RelaySticking => Some(e::RELAY_DETECTION.bit),
            Fault::LeakageSelfTest => Some(e::LEAKAGE_SELF_TEST.bit),
            _ => None,
        }
    }

    /// The OEM_FaultMask bit that switches detection off (FAQ 3.12, bits 8 to 16).
    fn detection_off_bit(self) -> Option<&'static str> {
        match self {
            Fault::Ground => Some("ground_detection_off"),
            Fault::RelaySticking => Some("relay_sticking_detection_off"),
            Fault::OverTemperature => Some("over_temperature_detection_off"),
            Fault::Overcurrent => Some("overcurrent_detection_off"),
            Fault::Overvoltage => Some("overvoltage_detection_off"),
            Fault::Undervoltage => Some("undervoltage_detection_off"),
            Fault::LeakageSelfTest => Some("leakage_self_test_off"),
            Fault::Leakage => Some("leakage_detection_off"),
            Fault::CpDiode => Some("cp_diode_detection_off"),
            Fault::CpError | Fault::Flash | Fault::AuxiliaryProcessor | Fault::LockStuck => None,
        }
    }

    pub fn error_code(self) -> ChargePointErrorCode {
        match self {
            Fault::Ground | Fault::Leakage => ChargePointErrorCode::GroundFailure,
            Fault::RelaySticking => ChargePointErrorCode::PowerSwitchFailure,
            Fault::OverTemperature => ChargePointErrorCode::HighTemperature,
            Fault::Overcurrent => ChargePointErrorCode::OverCurrentFailure,
            Fault::Overvoltage => ChargePointErrorCode::OverVoltage,
            Fault::Undervoltage => ChargePointErrorCode::UnderVoltage,
            Fault::LeakageSelfTest | Fault::Flash | Fault::AuxiliaryProcessor => {
                ChargePointErrorCode::InternalError
            }
            Fault::CpDiode | Fault::CpError => ChargePointErrorCode::OtherError,
            Fault::LockStuck => ChargePointErrorCode::ConnectorLockFailure,
        }
    }

    /// What the fault does under the masks, or `None` when it is not detected or ignored.
    pub fn effect(self, fault_mask: u32, function_mask: u32) -> Option<Effect> {
        let (faults, functions) = (&oem::FAULT_MASK, &oem::FUNCTION_MASK);
        if self
            .detection_off_bit()
            .is_some_and(|bit| faults.is_set(fault_mask, bit))
        {
            return None;
        }
        match self {
            Fault::Ground if faults.is_set(fault_mask, "ignore_ground_fault") => None,
            Fault::CpError if faults.is_set(fault_mask, "cp_fault_suspends") => {
                Some(Effect::Suspend)
            }
            Fault::CpDiode if !functions.is_set(function_mask, "cp_diode_error") => {
                Some(Effect::Warn)
            }
            // Charging goes on; only unlocking fails.
            Fault::LockStuck => Some(Effect::Warn),
            _ => Some(Effect::Stop),
        }
    }
}

/// What the active faults amount to under the masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The strongest effect of any detected fault.
    pub effect: Option<Effect>,
    pub error_code: ChargePointErrorCode,
    /// The sum of the FAQ 3.6 bits of the detected faults, in hex (`0xC000`).
    pub vendor_error_code: Option<String>,
}

pub fn assess(active: &BTreeSet<Fault>, fault_mask: u32, function_mask: u32) -> Assessment {
    let detected: Vec<(Fault, Effect)> = active
        .iter()
        .filter_map(|f| f.effect(fault_mask, function_mask).map(|e| (*f, e)))
        .collect();
    let strongest = detected.iter().map(|(_, e)| *e).min();
    // The error code of the first fault (in the order of Fault::ALL) with the strongest effect,
    // a specific code before the generic OtherError.
    let error_code = detected
        .iter()
        .filter(|(_, e)| Some(*e) == strongest)
        .map(|(f, _)| f.error_code())
        .min_by_key(|code| *code == ChargePointErrorCode::OtherError)
        .unwrap_or(ChargePointErrorCode::NoError);
    let bits: u32 = detected.iter().filter_map(|(f, _)| f.vendor_bit()).sum();
    Assessment {
        effect: strongest,
        error_code,
        vendor_error_code: oem::error_codes::format(bits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(faults: &[Fault]) -> BTreeSet<Fault> {
        faults.iter().copied().collect()
    }

    #[test]
    fn faq_3_6_relay_and_cp_error_sum_to_0xc000() {
        let a = assess(&set(&[Fault::RelaySticking, Fault::CpError]), 0, 0);
        assert_eq!(a.vendor_error_code.as_deref(), Some("0xC000"));
        assert_eq!(a.effect, Some(Effect::Stop));
        assert_eq!(a.error_code, ChargePointErrorCode::PowerSwitchFailure);
    }

    #[test]
    fn faq_3_12_fault_mask() {
        // 768 = ground and relay sticking detection off.
        let a = assess(&set(&[Fault::Ground, Fault::RelaySticking]), 768, 0);
        assert_eq!(
            a,
            Assessment {
                effect: None,
                error_code: ChargePointErrorCode::NoError,
                vendor_error_code: None
            }
        );
        // Bit 0: ground ignored; bit 1: CP error suspends.
        assert_eq!(Fault::Ground.effect(1, 0), None);
        assert_eq!(Fault::Ground.effect(0, 0), Some(Effect::Stop));
        assert_eq!(Fault::CpError.effect(2, 0), Some(Effect::Suspend));
        assert_eq!(Fault::CpError.effect(0, 0), Some(Effect::Stop));
        for (fault, bit) in [
            (Fault::OverTemperature, 10),
            (Fault::Overcurrent, 11),
            (Fault::Overvoltage, 12),
            (Fault::Undervoltage, 13),
            (Fault::LeakageSelfTest, 14),
            (Fault::Leakage, 15),
            (Fault::CpDiode, 16),
        ] {
            assert_eq!(fault.effect(1 << bit, 4), None, "{fault:?}");
            assert!(fault.effect(0, 4).is_some(), "{fault:?}");
        }
    }

    #[test]
    fn faq_3_13_cp_diode_is_an_error_only_with_function_bit_2() {
        assert_eq!(Fault::CpDiode.effect(0, 0), Some(Effect::Warn));
        assert_eq!(Fault::CpDiode.effect(0, 4), Some(Effect::Stop));
        let a = assess(&set(&[Fault::CpDiode]), 0, 0);
        assert_eq!(
            (a.effect, a.vendor_error_code.as_deref()),
            (Some(Effect::Warn), Some("0x2"))
        );
    }

    #[test]
    fn every_table_bit() {
        let all: BTreeSet<Fault> = Fault::ALL.into_iter().collect();
        assert_eq!(
            assess(&all, 0, 4).vendor_error_code.as_deref(),
            Some("0x1E102")
        );
        for f in Fault::ALL {
            assert_eq!(Fault::from_name(f.name()), Some(f));
        }
    }
}
