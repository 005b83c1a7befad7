//! OEM_FaultMask (FAQ 3.12) and OEM_FunctionMask (FAQ 3.13): their bits, names and meanings,
//! and the value format (decimal or `0x` hexadecimal).

use serde::Serialize;

/// One documented bit of a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MaskBit {
    pub bit: u8,
    /// A stable snake_case identifier.
    pub name: &'static str,
    /// What setting the bit does, after the FAQ.
    pub meaning: &'static str,
}

const fn b(bit: u8, name: &'static str, meaning: &'static str) -> MaskBit {
    MaskBit { bit, name, meaning }
}

/// A mask key: its documented bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mask {
    pub key: &'static str,
    pub bits: &'static [MaskBit],
}

/// OEM_FaultMask, the system error function control mask (FAQ 3.12). Bits 2..=7 and 17..=31
/// are reserved.
pub const FAULT_MASK: Mask = Mask {
    key: crate::keys::OEM_FAULT_MASK,
    bits: &[
        b(0, "ignore_ground_fault", "1: an abnormal ground connection is ignored; 0: it is reported and the pile cannot charge"),
        b(1, "cp_fault_suspends", "1: an abnormal CP connection suspends charging, which can resume; 0: it is reported and the pile cannot charge"),
        b(8, "ground_detection_off", "turns off ground wire detection"),
        b(9, "relay_sticking_detection_off", "turns off relay sticking detection"),
        b(10, "over_temperature_detection_off", "turns off over-temperature detection"),
        b(11, "overcurrent_detection_off", "turns off overcurrent detection"),
        b(12, "overvoltage_detection_off", "turns off overvoltage detection"),
        b(13, "undervoltage_detection_off", "turns off undervoltage detection"),
        b(14, "leakage_self_test_off", "shields the leakage self-test"),
        b(15, "leakage_detection_off", "shields leakage detection"),
        b(16, "cp_diode_detection_off", "shields the CP diode (-12 V) detection"),
    ],
};

/// OEM_FunctionMask, the system function control mask (FAQ 3.13).
pub const FUNCTION_MASK: Mask = Mask {
    key: crate::keys::OEM_FUNCTION_MASK,
    bits: &[
        b(0, "buzzer_off", "1: the buzzer prompt is off; 0: the buzzer is on"),
        b(1, "cc_off", "shields the CC (cable capacity) function"),
        b(2, "cp_diode_error", "an abnormal CP diode (-12 V) check puts the pile in the error state (otherwise a warning)"),
        b(3, "derating_off", "shields the over-temperature current reduction"),
    ],
};

/// OEM_FaultMask bits (FAQ 3.12): 0 ground stop, 1 CP stop, 8..=16 detections off.
pub const FAULT_MASK_BITS: u32 = FAULT_MASK.allowed_bits();
/// OEM_FunctionMask bits (FAQ 3.13): 0 buzzer off, 1 CC off, 2 CP diode error, 3 derating off.
pub const FUNCTION_MASK_BITS: u32 = FUNCTION_MASK.allowed_bits();

impl Mask {
    /// The bits that may be set.
    pub const fn allowed_bits(&self) -> u32 {
        let mut bits = 0;
        let mut i = 0;
        while i < self.bits.len() {
            bits |= 1 << self.bits[i].bit;
            i += 1;
        }
        bits
    }

    /// The documented bit named `name`.
    pub fn bit(&self, name: &str) -> Option<&'static MaskBit> {
        self.bits.iter().find(|b| b.name == name)
    }

    /// Reads a value of this mask (decimal or `0x` hexadecimal, no reserved bit set).
    pub fn parse(&self, value: &str) -> Result<u32, String> {
        parse_mask(value, self.allowed_bits())
    }

    /// Every documented bit with whether `value` sets it.
    pub fn decode(&self, value: u32) -> Vec<(&'static MaskBit, bool)> {
        self.bits
            .iter()
            .map(|b| (b, value & (1 << b.bit) != 0))
            .collect()
    }

    /// The value that sets exactly the bits named (the whole mask).
    pub fn from_names<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<u32, String> {
        let mut value = 0;
        for name in names {
            let bit = self
                .bit(name)
                .ok_or_else(|| format!("{} has no bit named {name:?}", self.key))?;
            value |= 1 << bit.bit;
        }
        Ok(value)
    }

    /// Whether `value` sets the bit named `name` (false for an unknown name).
    pub fn is_set(&self, value: u32, name: &str) -> bool {
        self.bit(name).is_some_and(|b| value & (1 << b.bit) != 0)
    }
}

/// A mask written in decimal or `0x` hexadecimal (FAQ 3.12, 3.13).
pub fn parse_mask(value: &str, allowed_bits: u32) -> Result<u32, String> {
    let v = value.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() => u32::from_str_radix(hex, 16),
        Some(_) => return Err("empty hexadecimal value".into()),
        None => v.parse::<u32>(),
    }
    .map_err(|_| format!("{value:?} is not a 32-bit decimal or 0x hexadecimal number"))?;
    let reserved = parsed & !allowed_bits;
    if reserved != 0 {
        return Err(format!("reserved bits set: {reserved:#x}"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(parse_mask("768", FAULT_MASK_BITS), Ok(768));
        assert_eq!(parse_mask("0x1", FUNCTION_MASK_BITS), Ok(1));
        assert_eq!(parse_mask("0x1FF03", FAULT_MASK_BITS), Ok(0x1FF03));
        assert!(
            parse_mask("4", FAULT_MASK_BITS).is_err(),
            "bit 2 is reserved"
        );
        assert!(
            parse_mask("0x20000", FAULT_MASK_BITS).is_err(),
            "bit 17 is reserved"
        );
        assert!(
            parse_mask("16", FUNCTION_MASK_BITS).is_err(),
            "bit 4 is reserved"
        );
        assert!(parse_mask("-1", FAULT_MASK_BITS).is_err());
        assert!(parse_mask("0x", FAULT_MASK_BITS).is_err());
        assert!(parse_mask("abc", FAULT_MASK_BITS).is_err());
    }

    #[test]
    fn faq_3_12_example_768_is_ground_and_relay_detection_off() {
        assert_eq!(FAULT_MASK_BITS, 0b1_1111_1111_0000_0011);
        assert_eq!(FUNCTION_MASK_BITS, 0b1111);
        let set: Vec<&str> = FAULT_MASK
            .decode(768)
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(b, _)| b.name)
            .collect();
        assert_eq!(
            set,
            ["ground_detection_off", "relay_sticking_detection_off"]
        );
        assert_eq!(
            FAULT_MASK.from_names(["ground_detection_off", "relay_sticking_detection_off"]),
            Ok(768)
        );
        assert!(FAULT_MASK.from_names(["buzzer_off"]).is_err());
        assert_eq!(FUNCTION_MASK.from_names(["buzzer_off"]), Ok(1));
    }
}
