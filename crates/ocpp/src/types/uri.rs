use std::fmt;
use std::ops::Deref;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec::{tolerate, DeviationKind};

/// An absolute URI (`scheme:rest`), as the schemas' `format: uri` asks (file locations).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uri(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an absolute URI: {0:?}")]
pub struct InvalidUri(pub String);

fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}')
        })
}

impl Uri {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidUri> {
        let s = s.into();
        if is_absolute_uri(&s) {
            Ok(Uri(s))
        } else {
            Err(InvalidUri(s))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The scheme, lower-cased (`http`, `https`, `ftp`, ...).
    pub fn scheme(&self) -> String {
        self.0
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

impl Deref for Uri {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Uri {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

struct UriVisitor;

impl Visitor<'_> for UriVisitor {
    type Value = Uri;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an absolute URI")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Uri, E> {
        if is_absolute_uri(v) || tolerate(DeviationKind::UriFormat, || format!("not a URI: {v:?}"))
        {
            Ok(Uri(v.to_owned()))
        } else {
            Err(E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
}

impl<'de> Deserialize<'de> for Uri {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(UriVisitor)
    }
}

#[cfg(feature = "arbitrary")]
impl proptest::arbitrary::Arbitrary for Uri {
    type Parameters = ();
    type Strategy = proptest::strategy::BoxedStrategy<Self>;
    fn arbitrary_with(_: ()) -> Self::Strategy {
        use proptest::prelude::*;
        "(http|https|ftp|ftps)://[a-z]{1,12}(\\.[a-z]{2,5})?(:[1-9][0-9]{0,3})?(/[a-zA-Z0-9._-]{1,10}){0,3}"
            .prop_map(Uri)
            .boxed()
    }
}
