use std::fmt;
use std::ops::Deref;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{tolerate, DeviationKind};

/// A string of at most `N` characters (the spec's CiString types and other `maxLength` strings).
///
/// Values made with [`CiString::new`] or decoded strictly respect the bound; a lenient decode may
/// keep a longer one (and reports it).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CiString<const N: usize>(String);

pub type CiString20 = CiString<20>;
pub type CiString25 = CiString<25>;
pub type CiString50 = CiString<50>;
pub type CiString255 = CiString<255>;
pub type CiString500 = CiString<500>;
/// An idTag.
pub type IdToken = CiString20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("string of {len} characters exceeds the limit of {max}")]
pub struct StringTooLong {
    pub len: usize,
    pub max: usize,
}

fn char_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

impl<const N: usize> CiString<N> {
    pub fn new(s: impl Into<String>) -> Result<Self, StringTooLong> {
        let s = s.into();
        // A byte count within the bound is always a character count within it.
        if s.len() <= N || char_len(&s) <= N {
            Ok(CiString(s))
        } else {
            Err(StringTooLong {
                len: char_len(&s),
                max: N,
            })
        }
    }
    /// The first `N` characters of `s`.
    pub fn truncating(s: &str) -> Self {
        if s.len() <= N {
            CiString(s.to_owned())
        } else {
            CiString(s.chars().take(N).collect())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
    /// Case-insensitive comparison, as the spec defines for CiString.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl<const N: usize> TryFrom<&str> for CiString<N> {
    type Error = StringTooLong;
    fn try_from(s: &str) -> Result<Self, StringTooLong> {
        CiString::new(s)
    }
}

impl<const N: usize> TryFrom<String> for CiString<N> {
    type Error = StringTooLong;
    fn try_from(s: String) -> Result<Self, StringTooLong> {
        CiString::new(s)
    }
}

impl<const N: usize> Deref for CiString<N> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for CiString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl<const N: usize> fmt::Display for CiString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const N: usize> Serialize for CiString<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

struct CiVisitor<const N: usize>;

impl<const N: usize> Visitor<'_> for CiVisitor<N> {
    type Value = CiString<N>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {N} characters")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<CiString<N>, E> {
        match CiString::new(v) {
            Ok(s) => Ok(s),
            Err(e) => {
                if tolerate(DeviationKind::StringTooLong, || format!("{e}: {v:?}")) {
                    Ok(CiString(v.to_owned()))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for CiString<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CiVisitor::<N>)
    }
}

#[cfg(feature = "arbitrary")]
impl<const N: usize> proptest::arbitrary::Arbitrary for CiString<N> {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        // Printable ASCII plus a few multi-byte characters, so that the bound is checked in
        // characters, not bytes.
        proptest::collection::vec(prop_oneof![8 => 0x20u8..0x7f, 1 => Just(0u8)], 0..=N)
            .prop_map(|bytes| {
                let s: String = bytes
                    .into_iter()
                    .map(|b| if b == 0 { 'é' } else { b as char })
                    .collect();
                CiString(s)
            })
            .boxed()
    }
}
