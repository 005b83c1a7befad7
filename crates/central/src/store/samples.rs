//! A MeterValue element's sampledValue array as the store keeps it: packed, each enumeration
//! value one byte, about a tenth of its JSON. Everything outside the central reads and writes
//! the JSON; packing happens as a row is inserted and unpacking as it is read, and gives back
//! the same JSON text. An array the packed form cannot give back byte for byte (a key order
//! or a value other than ours) is kept as its JSON: a row of an older version is JSON too.
//!
//! The packed form: the byte 1, then per sampled value a byte saying which of the optional
//! fields follow (bit 0 context, 1 format, 2 measurand, 3 phase, 4 location, 5 unit), the
//! value as a length and its bytes, then each field present as its number in the
//! enumeration's list (from 1), or 0, a length and the text of a value outside it. Lengths
//! are LEB128. JSON always starts with `[`, never with 1.

use ocpp::{Location, Measurand, Phase, ReadingContext, UnitOfMeasure, ValueFormat};
use serde_json::Value;

const PACKED: u8 = 1;

/// The optional fields of a sampledValue, in the order of their bits and of the JSON object.
const FIELDS: [&str; 6] = [
    "context",
    "format",
    "measurand",
    "phase",
    "location",
    "unit",
];

/// A stored sampledValue column could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("a stored sampledValue list is damaged at byte {0}")]
pub struct DamagedSamples(usize);

/// The wire names of a field's enumeration, in schema order.
fn names(field: usize) -> Vec<&'static str> {
    fn of<T>(all: &'static [T], name: fn(&'static T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(name).collect()
    }
    match field {
        0 => of(ReadingContext::ALL, |v| v.as_str()),
        1 => of(ValueFormat::ALL, |v| v.as_str()),
        2 => of(Measurand::ALL, |v| v.as_str()),
        3 => of(Phase::ALL, |v| v.as_str()),
        4 => of(Location::ALL, |v| v.as_str()),
        _ => of(UnitOfMeasure::ALL, |v| v.as_str()),
    }
}

fn push_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    push_len(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// The packed form of a sampledValue array's JSON, or the JSON's own bytes where packing
/// would not give it back exactly.
pub fn pack(json: &str) -> Vec<u8> {
    match try_pack(json) {
        Some(packed) if unpack(&packed).ok().as_deref() == Some(json) => packed,
        _ => json.as_bytes().to_vec(),
    }
}

fn try_pack(json: &str) -> Option<Vec<u8>> {
    let Value::Array(values) = serde_json::from_str::<Value>(json).ok()? else {
        return None;
    };
    let tables: Vec<Vec<&str>> = (0..FIELDS.len()).map(names).collect();
    let mut out = Vec::with_capacity(1 + values.len() * 10);
    out.push(PACKED);
    for value in &values {
        let object = value.as_object()?;
        let reading = object.get("value")?.as_str()?;
        let mut present = 0u8;
        let mut fields = Vec::new();
        for (bit, name) in FIELDS.iter().enumerate() {
            if let Some(v) = object.get(*name) {
                present |= 1 << bit;
                fields.push((bit, v.as_str()?));
            }
        }
        if object.len() != 1 + fields.len() {
            return None;
        }
        out.push(present);
        push_text(&mut out, reading);
        for (bit, text) in fields {
            match tables[bit].iter().position(|n| *n == text) {
                Some(i) if i < 255 => out.push(i as u8 + 1),
                _ => {
                    out.push(0);
                    push_text(&mut out, text);
                }
            }
        }
    }
    Some(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DamagedSamples> {
        let b = *self.bytes.get(self.at).ok_or(DamagedSamples(self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn len(&mut self) -> Result<usize, DamagedSamples> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DamagedSamples(self.at))
    }

    fn text(&mut self) -> Result<&'a str, DamagedSamples> {
        let n = self.len()?;
        let end = self.at.checked_add(n).ok_or(DamagedSamples(self.at))?;
        let raw = self
            .bytes
            .get(self.at..end)
            .ok_or(DamagedSamples(self.at))?;
        let text = std::str::from_utf8(raw).map_err(|_| DamagedSamples(self.at))?;
        self.at = end;
        Ok(text)
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

/// The JSON of a stored sampledValue column, packed or JSON.
pub fn unpack(stored: &[u8]) -> Result<String, DamagedSamples> {
    if stored.first() != Some(&PACKED) {
        return String::from_utf8(stored.to_vec())
            .map_err(|e| DamagedSamples(e.utf8_error().valid_up_to()));
    }
    let tables: Vec<Vec<&str>> = (0..FIELDS.len()).map(names).collect();
    let mut reader = Reader {
        bytes: stored,
        at: 1,
    };
    let mut json = String::with_capacity(stored.len() * 12);
    json.push('[');
    let mut first = true;
    while !reader.done() {
        if !first {
            json.push(',');
        }
        first = false;
        let present = reader.byte()?;
        json.push_str("{\"value\":");
        json.push_str(&Value::from(reader.text()?).to_string());
        for (bit, name) in FIELDS.iter().enumerate() {
            if present & (1 << bit) == 0 {
                continue;
            }
            let text = match reader.byte()? {
                0 => reader.text()?,
                i => *tables[bit]
                    .get(usize::from(i) - 1)
                    .ok_or(DamagedSamples(reader.at - 1))?,
            };
            json.push_str(",\"");
            json.push_str(name);
            json.push_str("\":");
            json.push_str(&Value::from(text).to_string());
        }
        json.push('}');
    }
    json.push(']');
    Ok(json)
}

/// The sampledValue column as a row mapping reads it: packed or JSON bytes, given as JSON.
#[derive(Debug, Clone, sqlx::Type)]
#[sqlx(transparent)]
pub struct StoredSamples(Vec<u8>);

impl TryFrom<StoredSamples> for String {
    type Error = DamagedSamples;

    fn try_from(stored: StoredSamples) -> Result<String, DamagedSamples> {
        unpack(&stored.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the fleet's piles send: ten readings of the default measurands.
    const FLEET: &str = r#"[{"value":"7360","context":"Sample.Periodic","format":"Raw","measurand":"Power.Offered","location":"Outlet","unit":"W"},{"value":"32","context":"Sample.Periodic","format":"Raw","measurand":"Current.Offered","location":"Outlet","unit":"A"},{"value":"10","context":"Sample.Periodic","format":"Raw","measurand":"Current.Import","location":"Outlet","unit":"A"},{"value":"3","context":"Sample.Periodic","format":"Raw","measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"},{"value":"3","context":"Sample.Periodic","format":"Raw","measurand":"Energy.Active.Import.Interval","location":"Outlet","unit":"Wh"},{"value":"2300","context":"Sample.Periodic","format":"Raw","measurand":"Power.Active.Import","location":"Outlet","unit":"W"},{"value":"25","context":"Sample.Periodic","format":"Raw","measurand":"Temperature","location":"Outlet","unit":"Celsius"},{"value":"25","context":"Sample.Periodic","format":"Raw","measurand":"Temperature","location":"Outlet","unit":"Celsius"},{"value":"25","context":"Sample.Periodic","format":"Raw","measurand":"Temperature","location":"Outlet","unit":"Celsius"},{"value":"230","context":"Sample.Periodic","format":"Raw","measurand":"Voltage","location":"Outlet","unit":"V"}]"#;

    #[test]
    fn ten_readings_pack_to_a_tenth_and_come_back_as_they_were() {
        let packed = pack(FLEET);
        assert_eq!(packed[0], PACKED);
        assert!(packed.len() * 10 < FLEET.len(), "{} bytes", packed.len());
        assert_eq!(unpack(&packed).unwrap(), FLEET);
    }

    #[test]
    fn what_packing_cannot_give_back_is_kept_as_json() {
        for json in [
            // Another key order than ours.
            r#"[{"measurand":"Voltage","value":"230"}]"#,
            // A key OCPP does not have, a value that is not text, not an array.
            r#"[{"value":"1","colour":"red"}]"#,
            r#"[{"value":1}]"#,
            r#"{"value":"1"}"#,
            // Escapes our writer would not produce.
            r#"[{"value":"\u0031"}]"#,
        ] {
            assert_eq!(pack(json), json.as_bytes(), "{json}");
            assert_eq!(unpack(&pack(json)).unwrap(), json);
        }
    }

    #[test]
    fn values_outside_the_enumerations_and_odd_text_are_packed_verbatim() {
        for json in [
            r#"[{"value":"1","unit":"Fahrenheit","measurand":"Voltage"}]"#,
            r#"[{"value":"2","measurand":"Moisture"}]"#,
            r#"[{"value":"quote \" and é and \\ and \n"}]"#,
            r#"[]"#,
        ] {
            assert_eq!(unpack(&pack(json)).unwrap(), json, "{json}");
        }
        let odd = r#"[{"value":"2","measurand":"Moisture"}]"#;
        assert_eq!(pack(odd)[0], PACKED);
    }

    proptest::proptest! {
        /// Whatever a pile's sampled values are, what the central serializes of them comes
        /// back byte for byte, and packed never takes more room than the JSON.
        #[test]
        fn any_sampled_values_come_back_as_they_were(
            values in proptest::collection::vec(
                proptest::arbitrary::any::<ocpp::SampledValue>(), 0..12)
        ) {
            let json = serde_json::to_string(&values).unwrap();
            let packed = pack(&json);
            proptest::prop_assert!(packed.len() <= json.len());
            proptest::prop_assert_eq!(unpack(&packed).unwrap(), json);
        }
    }

    #[test]
    fn a_damaged_column_is_an_error_not_a_panic() {
        let packed = pack(FLEET);
        for cut in 1..packed.len() {
            let _ = unpack(&packed[..cut]);
        }
        assert!(unpack(&[PACKED, 0, 200]).is_err());
        assert!(unpack(&[PACKED, 4, 1, b'1', 250]).is_err());
        assert!(unpack(&[0xff, 0xfe]).is_err());
    }
}
