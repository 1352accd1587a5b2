//! `open_enum!`: enums inside records that may grow. A peer that does not know a variant keeps
//! it as `Other(code)` instead of failing the whole record, so a new prompt or consent kind never
//! breaks an agent or cloud already in the field. On the wire a variant is its `u16` code
//! (postcard varint); in JSON and config it is its name.

/// Declares an open enum: named variants with fixed wire codes, plus `Other(u16)`.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $var:ident = $code:literal => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )*
            /// A variant this build does not know, sent by a newer peer; kept, not refused.
            Other(u16),
        }

        impl $name {
            /// Every variant this build knows.
            pub const ALL: &'static [Self] = &[$(Self::$var),*];

            /// The variant's wire code.
            pub const fn code(self) -> u16 {
                match self {
                    $( Self::$var => $code, )*
                    Self::Other(c) => c,
                }
            }

            /// The variant for a wire code; unknown codes become `Other`.
            pub const fn from_code(code: u16) -> Self {
                match code {
                    $( $code => Self::$var, )*
                    other => Self::Other(other),
                }
            }

            /// The variant's name in JSON and config (`"other"` for unknown ones).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$var => $text, )*
                    Self::Other(_) => "other",
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self {
                    Self::Other(c) => write!(f, "other({c})"),
                    known => f.write_str(known.name()),
                }
            }
        }

        impl core::str::FromStr for $name {
            type Err = crate::WireError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok(Self::$var), )*
                    _ => Err(crate::WireError::UnknownName {
                        what: stringify!($name),
                        name: s.to_owned(),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    s.serialize_u16(self.code())
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    s.parse().map_err(<D::Error as serde::de::Error>::custom)
                } else {
                    Ok(Self::from_code(u16::deserialize(d)?))
                }
            }
        }
    };
}

pub(crate) use open_enum;
