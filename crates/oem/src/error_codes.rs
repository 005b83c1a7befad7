//! The vendorErrorCode table of FAQ 3.6: hardware faults as hexadecimal bits, summed when
//! several occur at once (relay detection and CP error: `0xC000`).

use serde::Serialize;

/// One fault of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VendorError {
    /// The FAQ's error code (the bit number).
    pub code: u8,
    /// Its bit in vendorErrorCode.
    pub bit: u32,
    /// A stable snake_case identifier.
    pub name: &'static str,
    /// The FAQ's description.
    pub meaning: &'static str,
}

const fn e(code: u8, name: &'static str, meaning: &'static str) -> VendorError {
    VendorError {
        code,
        bit: 1 << code,
        name,
        meaning,
    }
}

pub const CP_MINUS_12V: VendorError = e(1, "cp_minus_12v", "CP -12V");
pub const FLASH: VendorError = e(8, "flash_error", "flash error");
pub const AUXILIARY_PROCESSOR: VendorError =
    e(13, "auxiliary_processor", "auxiliary processor exception");
pub const CP_ERROR: VendorError = e(14, "cp_error", "CP error");
pub const RELAY_DETECTION: VendorError = e(
    15,
    "relay_detection",
    "relay opening and closing detection abnormality",
);
pub const LEAKAGE_SELF_TEST: VendorError =
    e(16, "leakage_self_test", "leakage self-test abnormality");

/// The whole table, in the FAQ's order.
pub const VENDOR_ERRORS: [VendorError; 6] = [
    CP_MINUS_12V,
    FLASH,
    AUXILIARY_PROCESSOR,
    CP_ERROR,
    RELAY_DETECTION,
    LEAKAGE_SELF_TEST,
];

/// The vendorErrorCode for a sum of bits (`0xC000`), or `None` for none.
pub fn format(bits: u32) -> Option<String> {
    (bits != 0).then(|| format!("0x{bits:X}"))
}

/// Reads a vendorErrorCode (`0xC000`, or hexadecimal digits without the prefix).
pub fn parse(code: &str) -> Option<u32> {
    let c = code.trim();
    let hex = c
        .strip_prefix("0x")
        .or_else(|| c.strip_prefix("0X"))
        .unwrap_or(c);
    if hex.is_empty() {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// The names of the faults a vendorErrorCode reports; bits outside the table are named
/// `unknown_bit_N`. A code that is not hexadecimal yields nothing.
pub fn decode(code: &str) -> Vec<String> {
    let Some(bits) = parse(code) else {
        return Vec::new();
    };
    (0..32)
        .filter(|n| bits & (1 << n) != 0)
        .map(|n| match VENDOR_ERRORS.iter().find(|e| e.code == n) {
            Some(e) => e.name.to_owned(),
            None => format!("unknown_bit_{n}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faq_3_6_table_and_sum() {
        let bits: Vec<u32> = VENDOR_ERRORS.iter().map(|e| e.bit).collect();
        assert_eq!(bits, [0x2, 0x100, 0x2000, 0x4000, 0x8000, 0x10000]);
        assert_eq!(
            format(RELAY_DETECTION.bit + CP_ERROR.bit).as_deref(),
            Some("0xC000")
        );
        assert_eq!(decode("0xC000"), ["cp_error", "relay_detection"]);
        assert_eq!(decode("0x1E102").len(), 6);
        assert_eq!(
            decode("0x7"),
            ["unknown_bit_0", "cp_minus_12v", "unknown_bit_2"]
        );
        assert!(decode("").is_empty());
        assert!(decode("E-42").is_empty());
        assert_eq!(format(0), None);
    }
}
