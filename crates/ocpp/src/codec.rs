//! Decoding policies and the deviations a lenient decode reports.
//!
//! Decoding runs through serde; the leaf types of this crate (timestamps, bounded strings,
//! enumerations, decimals, URIs) consult the policy of the decode in progress through a
//! thread-local context. Decoding is synchronous, so the context never leaks across tasks.

use std::cell::RefCell;
use std::fmt;

/// How strictly incoming payloads are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// What the 1.6 schemas and the specification require (the pile's default).
    #[default]
    Strict,
    /// Accepts the known real-world deviations and reports each one (the central system's default).
    Lenient,
    /// What people and scripts hand the central system's API: strict, except that a date-time
    /// may be any RFC 3339 form (any number of fraction digits, any offset), taken as the
    /// same instant in UTC with millisecond precision. The encoding that goes on to a pile is
    /// the canonical one.
    Input,
}

/// The kinds of real-world deviation that [`Policy::Lenient`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviationKind {
    /// A timestamp with a fraction longer than 3 digits, a numeric offset instead of `Z`, or no zone.
    TimestampFormat,
    /// `Celsius` where the schema only allows `Celcius` (StopTransaction).
    CelsiusSpelling,
    /// A string longer than its CiString bound.
    StringTooLong,
    /// An enumeration value outside the 1.6 list, kept as raw text.
    UnknownEnumValue,
    /// A decimal that is not a multiple of 0.1 where the schema requires it; rounded.
    DecimalPrecision,
    /// A value that is not a URI where the schema asks for one.
    UriFormat,
}

/// One deviation found while decoding leniently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    pub kind: DeviationKind,
    pub detail: String,
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.detail)
    }
}

/// A decoded value with the deviations that were tolerated to decode it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<T> {
    pub value: T,
    pub deviations: Vec<Deviation>,
}

#[derive(Default)]
struct Context {
    policy: Policy,
    deviations: Vec<Deviation>,
    /// Set while a StopTransaction `transactionData` is encoded or decoded, whose unit
    /// enumeration only has the `Celcius` spelling.
    stop_transaction_units: bool,
}

thread_local! {
    static CONTEXT: RefCell<Context> = RefCell::new(Context::default());
}

/// Runs `f` with `policy` in force and collects the deviations it tolerated.
pub(crate) fn with_policy<T, E>(
    policy: Policy,
    f: impl FnOnce() -> Result<T, E>,
) -> Result<Decoded<T>, E> {
    let saved = CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        let saved = (c.policy, std::mem::take(&mut c.deviations));
        c.policy = policy;
        saved
    });
    let result = f();
    let deviations = CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        c.policy = saved.0;
        std::mem::replace(&mut c.deviations, saved.1)
    });
    result.map(|value| Decoded { value, deviations })
}

/// Asks whether a deviation may be tolerated; records it when it may.
pub(crate) fn tolerate(kind: DeviationKind, detail: impl FnOnce() -> String) -> bool {
    CONTEXT.with(|c| {
        let mut c = c.borrow_mut();
        match c.policy {
            Policy::Strict | Policy::Input => false,
            Policy::Lenient => {
                c.deviations.push(Deviation {
                    kind,
                    detail: detail(),
                });
                true
            }
        }
    })
}

/// Whether any RFC 3339 date-time is taken ([`Policy::Input`]).
pub(crate) fn takes_any_rfc3339() -> bool {
    CONTEXT.with(|c| c.borrow().policy == Policy::Input)
}

pub(crate) fn in_stop_transaction_units() -> bool {
    CONTEXT.with(|c| c.borrow().stop_transaction_units)
}

/// Runs `f` with the StopTransaction spelling of the temperature unit in force.
pub(crate) fn with_stop_transaction_units<T>(f: impl FnOnce() -> T) -> T {
    let saved =
        CONTEXT.with(|c| std::mem::replace(&mut c.borrow_mut().stop_transaction_units, true));
    let out = f();
    CONTEXT.with(|c| c.borrow_mut().stop_transaction_units = saved);
    out
}
