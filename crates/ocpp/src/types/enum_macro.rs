/// Declares an OCPP enumeration: the wire names, `ALL`, `as_str`, `from_wire`, and an
/// `Unrecognized(String)` variant that only a lenient decode produces.
macro_rules! ocpp_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value outside the OCPP 1.6 enumeration, kept verbatim (lenient decoding only).
            Unrecognized(String),
        }

        impl $name {
            /// Every value of the enumeration, in schema order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unrecognized(s) => s,
                }
            }

            pub fn from_wire(s: &str) -> Option<$name> {
                match s {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        #[cfg(feature = "arbitrary")]
        impl proptest::arbitrary::Arbitrary for $name {
            type Parameters = ();
            type Strategy = proptest::strategy::BoxedStrategy<Self>;
            fn arbitrary_with(_: ()) -> Self::Strategy {
                use proptest::prelude::*;
                proptest::sample::select($name::ALL).boxed()
            }
        }
    };
}

/// Serde for an enumeration declared with `ocpp_enum!`: unknown values are a
/// PropertyConstraintViolation when strict, kept as `Unknown` when lenient.
macro_rules! ocpp_enum_serde {
    ($name:ident) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a {} value", stringify!($name))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $crate::types::enums::decode_enum(
                            v,
                            $name::from_wire,
                            $name::Unrecognized,
                            stringify!($name),
                        )
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}
