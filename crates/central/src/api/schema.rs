//! What the OpenAPI document says of values the handlers keep as strings (the enumerations
//! the store holds as text), and of the path parameters many routes share.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::IntoParams;

/// A string that is one of `values`.
fn one_of(values: &[&str], description: &str) -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
            .description(Some(description))
            .build(),
    )
}

pub fn registration() -> Schema {
    one_of(
        &["Accepted", "Pending", "Rejected"],
        "Pending: in the approval inbox; its boots are answered as this says",
    )
}

pub fn direction() -> Schema {
    one_of(&["in", "out"], "in: from the pile; out: to the pile")
}

/// The statuses an idTag can be given (ConcurrentTx is an answer, not a status to keep).
pub const ID_TAG_STATUSES: [&str; 4] = ["Accepted", "Blocked", "Expired", "Invalid"];

pub fn id_tag_status() -> Schema {
    one_of(
        &ID_TAG_STATUSES,
        "an idTag past its expiry_date authorizes as Expired",
    )
}

pub fn campaign_state() -> Schema {
    one_of(
        &["running", "cancelling", "finished", "cancelled"],
        "cancelling: cancelled while piles still upgrade",
    )
}

/// The `active` filter of the transactions: an empty value is no filter.
pub fn active_filter() -> Schema {
    one_of(
        &["true", "false", ""],
        "true: running transactions only; false: stopped ones only",
    )
}

/// A pile's identity in the path (the handlers take it as `Path<String>`; this only describes
/// it).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct PileId {
    /// The pile's identity
    #[param(min_length = 1, example = "CP001")]
    id: String,
}
