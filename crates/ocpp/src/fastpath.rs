//! A fast path for the hottest incoming CALL, MeterValues.
//!
//! It accepts only the plain form of a frame: no escapes in strings, no `null`s, no duplicate
//! or unknown keys, canonical timestamps, known enumeration values, integers without fraction
//! or exponent. On anything else it gives up (`None`) and the general serde path decodes the
//! frame and classifies any error. What it accepts decodes to exactly the value the general
//! path gives under either policy, with no deviations; a differential test and the fuzz target
//! check that.

use crate::action::Request;
use crate::frame::MAX_ID_LEN;
use crate::messages::{MeterValue, MeterValuesRequest, SampledValue};
use crate::types::{
    Location, Measurand, Phase, ReadingContext, Timestamp, UnitOfMeasure, ValueFormat,
};

/// The index of the first `"`, `\\` or control character, eight bytes at a time.
///
/// In each word the lowest flagged byte is exact for every test (a false flag can only appear
/// above a true one), so the lowest bit of their union is the first special byte.
fn special_byte(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let flags = zero_bytes(w ^ (ONES * u64::from(b'"')))
            | zero_bytes(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
        if flags != 0 {
            return Some(i + (flags.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn ws(&mut self) {
        let b = self.text.as_bytes();
        // Every JSON whitespace byte is at most b' '.
        while let Some(&c) = b.get(self.pos) {
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.pos += 1)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let b = self.text.as_bytes();
        let start = self.pos;
        let len = special_byte(&b[start..])?;
        self.pos = start + len;
        if b[self.pos] != b'"' {
            return None;
        }
        self.pos += 1;
        Some(&self.text[start..start + len])
    }

    /// An i32 in plain JSON integer syntax.
    fn int(&mut self) -> Option<i32> {
        self.ws();
        let b = self.text.as_bytes();
        let start = self.pos;
        if b.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let digits = self.pos;
        while self.pos < b.len() && b[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        let n = self.pos - digits;
        // No leading zeros, at most 10 digits, and no fraction or exponent following.
        if n == 0
            || n > 10
            || (n > 1 && b[digits] == b'0')
            || matches!(b.get(self.pos), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.text[start..self.pos]
            .parse::<i64>()
            .ok()
            .and_then(|v| i32::try_from(v).ok())
    }

    /// Calls `field` for each key of an object; `bit` keeps duplicates out.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<u32>) -> Option<u32> {
        self.eat(b'{')?;
        let mut seen = 0u32;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(seen);
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let bit = field(self, key)?;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(seen);
                }
                _ => return None,
            }
        }
    }

    fn array<T>(
        &mut self,
        capacity: usize,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.eat(b'[')?;
        let mut items = Vec::with_capacity(capacity);
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }
}

fn sampled_value(lx: &mut Lexer<'_>) -> Option<SampledValue> {
    let mut sv = SampledValue {
        value: String::new(),
        context: None,
        format: None,
        measurand: None,
        phase: None,
        location: None,
        unit: None,
    };
    let seen = lx.object(|lx, key| {
        Some(match key {
            "value" => {
                sv.value = lx.string()?.to_owned();
                1
            }
            "context" => {
                sv.context = Some(ReadingContext::from_wire(lx.string()?)?);
                2
            }
            "format" => {
                sv.format = Some(ValueFormat::from_wire(lx.string()?)?);
                4
            }
            "measurand" => {
                sv.measurand = Some(Measurand::from_wire(lx.string()?)?);
                8
            }
            "phase" => {
                sv.phase = Some(Phase::from_wire(lx.string()?)?);
                16
            }
            "location" => {
                sv.location = Some(Location::from_wire(lx.string()?)?);
                32
            }
            "unit" => {
                let s = lx.string()?;
                sv.unit = Some(if s == "Celcius" {
                    UnitOfMeasure::Celsius
                } else {
                    UnitOfMeasure::from_wire(s)?
                });
                64
            }
            _ => return None,
        })
    })?;
    (seen & 1 != 0).then_some(sv)
}

fn meter_value(lx: &mut Lexer<'_>) -> Option<MeterValue> {
    let mut timestamp = None;
    let mut sampled = None;
    lx.object(|lx, key| {
        Some(match key {
            "timestamp" => {
                timestamp = Some(Timestamp::parse_canonical(lx.string()?)?);
                1
            }
            "sampledValue" => {
                sampled = Some(lx.array(16, sampled_value)?);
                2
            }
            _ => return None,
        })
    })?;
    Some(MeterValue {
        timestamp: timestamp?,
        sampled_value: sampled?,
    })
}

fn meter_values(lx: &mut Lexer<'_>) -> Option<MeterValuesRequest> {
    let mut connector_id = None;
    let mut transaction_id = None;
    let mut meter_values = None;
    lx.object(|lx, key| {
        Some(match key {
            "connectorId" => {
                connector_id = Some(lx.int()?);
                1
            }
            "transactionId" => {
                transaction_id = Some(lx.int()?);
                2
            }
            "meterValue" => {
                meter_values = Some(lx.array(1, meter_value)?);
                4
            }
            _ => return None,
        })
    })?;
    Some(MeterValuesRequest {
        connector_id: connector_id?,
        transaction_id,
        meter_value: meter_values?,
    })
}

/// Decodes `[2,"id","MeterValues",{...}]` in one pass, or gives up.
pub fn call(text: &str) -> Option<(String, Request)> {
    let mut lx = Lexer { text, pos: 0 };
    lx.eat(b'[')?;
    if lx.int()? != 2 {
        return None;
    }
    lx.eat(b',')?;
    let id = lx.string()?;
    if id.len() > MAX_ID_LEN {
        return None;
    }
    lx.eat(b',')?;
    let request = match lx.string()? {
        "MeterValues" => {
            lx.eat(b',')?;
            Request::MeterValues(meter_values(&mut lx)?)
        }
        _ => return None,
    };
    lx.eat(b']')?;
    (lx.peek().is_none()).then(|| (id.to_owned(), request))
}
