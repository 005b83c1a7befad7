use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::MeterValue;
use crate::codec::with_stop_transaction_units;

/// One entry of StopTransaction's `transactionData`: a [`MeterValue`] whose temperature unit is
/// written `Celcius`, the only spelling that schema has.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "arbitrary", derive(proptest_derive::Arbitrary))]
pub struct TransactionData(pub MeterValue);

impl Serialize for TransactionData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        with_stop_transaction_units(|| self.0.serialize(s))
    }
}

impl<'de> Deserialize<'de> for TransactionData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        with_stop_transaction_units(|| MeterValue::deserialize(d)).map(TransactionData)
    }
}

impl From<MeterValue> for TransactionData {
    fn from(m: MeterValue) -> Self {
        TransactionData(m)
    }
}
