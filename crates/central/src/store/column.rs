//! Column types the row mappings decode through, where a column's database type is not the
//! field's: the same decoding on SQLite and PostgreSQL.

/// A flag column: BIGINT 0 or 1 (the schema keeps flags as integers on both databases).
#[derive(Debug, Clone, Copy, sqlx::Type)]
#[sqlx(transparent)]
pub struct Flag(i64);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0 != 0
    }
}

/// The message log's `direction` column: `in`, anything else reads as `out`.
#[derive(Debug, Clone, sqlx::Type)]
#[sqlx(transparent)]
pub struct Direction(String);

impl From<Direction> for &'static str {
    fn from(direction: Direction) -> &'static str {
        if direction.0 == "in" {
            "in"
        } else {
            "out"
        }
    }
}
