use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{tolerate, DeviationKind};

/// A charging rate (A or W) in the schema's `multipleOf: 0.1` grid, held exactly as tenths.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChargingRate {
    tenths: i64,
}

/// Beyond this the conversion through f64 is no longer exact to the tenth.
const MAX_TENTHS: i64 = 1 << 50;

impl ChargingRate {
    pub const ZERO: ChargingRate = ChargingRate { tenths: 0 };

    pub fn from_tenths(tenths: i64) -> Self {
        ChargingRate {
            tenths: tenths.clamp(-MAX_TENTHS, MAX_TENTHS),
        }
    }
    /// Rounds to the nearest tenth.
    pub fn from_f64(v: f64) -> Option<Self> {
        let t = (v * 10.0).round();
        (t.is_finite() && t.abs() <= MAX_TENTHS as f64).then_some(ChargingRate { tenths: t as i64 })
    }
    pub fn tenths(&self) -> i64 {
        self.tenths
    }
    pub fn as_f64(&self) -> f64 {
        self.tenths as f64 / 10.0
    }
}

impl fmt::Debug for ChargingRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

impl fmt::Display for ChargingRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_f64())
    }
}

impl Serialize for ChargingRate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

struct RateVisitor;

impl RateVisitor {
    fn check<E: de::Error>(&self, v: f64) -> Result<ChargingRate, E> {
        let Some(rate) = ChargingRate::from_f64(v) else {
            return Err(E::invalid_value(de::Unexpected::Float(v), self));
        };
        let exact = ((v * 10.0) - rate.tenths as f64).abs() < 1e-6;
        if exact
            || tolerate(DeviationKind::DecimalPrecision, || {
                format!("{v} rounded to {rate}")
            })
        {
            Ok(rate)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), self))
        }
    }
}

impl Visitor<'_> for RateVisitor {
    type Value = ChargingRate;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number that is a multiple of 0.1")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ChargingRate, E> {
        self.check(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ChargingRate, E> {
        self.check(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ChargingRate, E> {
        self.check(v as f64)
    }
}

impl<'de> Deserialize<'de> for ChargingRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_f64(RateVisitor)
    }
}

#[cfg(feature = "arbitrary")]
impl proptest::arbitrary::Arbitrary for ChargingRate {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        prop_oneof![0i64..1_000, 0i64..10_000_000]
            .prop_map(ChargingRate::from_tenths)
            .boxed()
    }
}
