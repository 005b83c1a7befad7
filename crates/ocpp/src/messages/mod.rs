//! Typed payloads of every OCPP-J 1.6 action.

mod security;
mod transaction_data;
mod v16;

pub use security::*;
pub use transaction_data::TransactionData;
pub use v16::*;

/// Deserializes an optional array whose schema has `minItems: 1`.
pub(crate) fn non_empty<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    let v = <Option<Vec<T>> as serde::Deserialize>::deserialize(d)?;
    if v.as_ref().is_some_and(Vec::is_empty) {
        return Err(serde::de::Error::invalid_length(0, &"at least one item"));
    }
    Ok(v)
}
