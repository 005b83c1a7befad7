use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{takes_any_rfc3339, tolerate, DeviationKind};

/// A point in time, UTC, with millisecond precision.
///
/// Encoded as RFC 3339 with exactly three fraction digits and `Z`
/// (`2026-11-24T13:10:17.000Z`). Strict decoding takes RFC 3339 with `Z` and at most three
/// fraction digits (the OCPP-J limit); lenient decoding also takes longer fractions (truncated
/// to milliseconds), numeric offsets (converted to UTC) and a missing zone (read as UTC).
/// [`Timestamp::from_rfc3339`] (and decoding under [`crate::Policy::Input`]) takes any RFC 3339
/// date-time, normalised the same way, and nothing else.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("not an RFC 3339 date-time: {0:?}")]
    Invalid(String),
    #[error("date-time must be UTC with 'Z' and at most 3 fraction digits: {0:?}")]
    NotCanonical(String),
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    let ns = t.nanosecond();
    t.with_nanosecond(ns - ns % 1_000_000).unwrap_or(t)
}

/// RFC 3339 covers years 0000 to 9999.
const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

fn in_range(t: &DateTime<Utc>) -> bool {
    (MIN_MS..=MAX_MS).contains(&t.timestamp_millis())
}

impl Timestamp {
    /// Truncates to milliseconds and clamps to the years 0000..=9999 that RFC 3339 can express.
    pub fn from_utc(t: DateTime<Utc>) -> Self {
        let ms = t.timestamp_millis().clamp(MIN_MS, MAX_MS);
        Timestamp(Utc.timestamp_millis_opt(ms).single().unwrap_or(t))
    }
    /// Milliseconds since the Unix epoch; `None` outside the years 0000..=9999.
    pub fn from_millis(ms: i64) -> Option<Self> {
        if !(MIN_MS..=MAX_MS).contains(&ms) {
            return None;
        }
        Utc.timestamp_millis_opt(ms).single().map(Timestamp)
    }
    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }
    pub fn as_utc(&self) -> DateTime<Utc> {
        self.0
    }

    /// Any RFC 3339 date-time (any number of fraction digits, `Z` or any offset, `T` or `t`),
    /// as the same instant in UTC, truncated to milliseconds; within the years 0000..=9999 in
    /// UTC. What a person or a script writes (Python's `datetime.isoformat()` gives
    /// microseconds and `+00:00`); its [`Display`](fmt::Display) is the OCPP-J form.
    pub fn from_rfc3339(s: &str) -> Result<Timestamp, TimestampError> {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) if in_range(&t.with_timezone(&Utc)) => {
                Ok(Timestamp(truncate_ms(t.with_timezone(&Utc))))
            }
            _ => Err(TimestampError::Invalid(s.to_owned())),
        }
    }

    /// Checks the strict form: `YYYY-MM-DDTHH:MM:SS[.f{1,3}]Z`.
    fn is_canonical(s: &str) -> bool {
        let b = s.as_bytes();
        if b.len() < 20 || b[10] != b'T' || b[b.len() - 1] != b'Z' {
            return false;
        }
        match b.len() {
            20 => true,
            22..=24 => b[19] == b'.' && b[20..b.len() - 1].iter().all(u8::is_ascii_digit),
            _ => false,
        }
    }

    /// Parses only the canonical strict form; `None` for anything else.
    pub(crate) fn parse_canonical(s: &str) -> Option<Timestamp> {
        if !Self::is_canonical(s) {
            return None;
        }
        let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
        in_range(&t).then_some(Timestamp(t))
    }

    /// Parses under the policy in force (strict outside a lenient decode).
    fn parse_with_policy(s: &str) -> Result<Timestamp, TimestampError> {
        let parsed = DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
        match parsed {
            Ok(t) if !in_range(&t) => Err(TimestampError::Invalid(s.to_owned())),
            Ok(t) if Self::is_canonical(s) => Ok(Timestamp(t)),
            Ok(t) if takes_any_rfc3339() => Ok(Timestamp(truncate_ms(t))),
            Ok(t) => {
                if tolerate(DeviationKind::TimestampFormat, || {
                    format!("non-canonical timestamp {s:?}")
                }) {
                    Ok(Timestamp(truncate_ms(t)))
                } else {
                    Err(TimestampError::NotCanonical(s.to_owned()))
                }
            }
            Err(_) => {
                let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f");
                match naive {
                    Ok(n)
                        if in_range(&n.and_utc())
                            && tolerate(DeviationKind::TimestampFormat, || {
                                format!("timestamp without zone {s:?}")
                            }) =>
                    {
                        Ok(Timestamp(truncate_ms(n.and_utc())))
                    }
                    _ => Err(TimestampError::Invalid(s.to_owned())),
                }
            }
        }
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Timestamp::from_utc(t)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    /// Strict parse (outside any lenient decode).
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        Timestamp::parse_with_policy(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct TsVisitor;

impl Visitor<'_> for TsVisitor {
    type Value = Timestamp;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if takes_any_rfc3339() {
            f.write_str("an RFC 3339 date-time")
        } else {
            f.write_str("an RFC 3339 UTC date-time")
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        Timestamp::parse_with_policy(v).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TsVisitor)
    }
}

#[cfg(feature = "arbitrary")]
impl proptest::arbitrary::Arbitrary for Timestamp {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        // 1970 .. 2200
        (0i64..7_258_118_400_000)
            .prop_map(|ms| Timestamp::from_millis(ms).expect("in range"))
            .boxed()
    }
}
