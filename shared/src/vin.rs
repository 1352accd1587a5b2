//! The vehicle identification number: 17 characters of the ISO 3779 alphabet.
//!
//! A [`Vin`] exists only valid: it is parsed once at the edge (config, topic, envelope) and
//! carried as a fixed 17-byte value after that. The check digit (position 9) is not verified:
//! it is mandatory only in North America, and an agent must not refuse a valid European VIN.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a VIN in characters.
pub const VIN_LEN: usize = 17;

/// A vehicle identification number (ISO 3779): digits and capital letters except I, O and Q.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vin([u8; VIN_LEN]);

/// Why a text is not a VIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VinError {
    /// Not 17 characters long.
    #[error("VIN must be 17 characters, got {0}")]
    Length(usize),
    /// A character outside the ISO 3779 alphabet.
    #[error("VIN character {position} is {found:?}: only digits and capitals except I, O, Q")]
    Character {
        /// 1-based position of the offending character.
        position: usize,
        /// The character found there.
        found: char,
    },
}

const fn allowed(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'H' | b'J'..=b'N' | b'P' | b'R'..=b'Z')
}

impl Vin {
    /// Parses a VIN from bytes.
    ///
    /// # Errors
    /// [`VinError`] if the length or a character is wrong. Lower-case letters are refused, not
    /// upper-cased: a VIN on the wire or in a topic must be canonical.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VinError> {
        let arr: [u8; VIN_LEN] = bytes
            .try_into()
            .map_err(|_| VinError::Length(bytes.len()))?;
        if let Some(i) = arr.iter().position(|&b| !allowed(b)) {
            return Err(VinError::Character {
                position: i + 1,
                found: char::from(arr[i]),
            });
        }
        Ok(Self(arr))
    }

    /// The VIN as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `from_bytes`), so this cannot fail.
        core::str::from_utf8(&self.0).unwrap_or("?????????????????")
    }

    /// The VIN's 17 bytes.
    pub fn as_bytes(&self) -> &[u8; VIN_LEN] {
        &self.0
    }
}

impl FromStr for Vin {
    type Err = VinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(s.as_bytes())
    }
}

impl TryFrom<&str> for Vin {
    type Error = VinError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vin({})", self.as_str())
    }
}

// Human-readable formats (JSON, TOML) see a string; postcard sees 17 raw bytes, no length prefix.
impl Serialize for Vin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(self.as_str())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Vin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(D::Error::custom)
        } else {
            let arr = <[u8; VIN_LEN]>::deserialize(d)?;
            Self::from_bytes(&arr).map_err(D::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_real_vins() {
        // VINs from VECTORS.md §1a/§1b (mode 09 PID 02 answers of real cars).
        for s in ["1G1JC5444R7252367", "WP0ZZZ99ZTS392124"] {
            assert_eq!(s.parse::<Vin>().unwrap().as_str(), s);
        }
    }

    #[test]
    fn refuses_bad_vins() {
        assert_eq!("1G1JC5444R725236".parse::<Vin>(), Err(VinError::Length(16)));
        assert_eq!(
            "1G1JC5444R72523I7".parse::<Vin>(),
            Err(VinError::Character {
                position: 16,
                found: 'I'
            })
        );
        assert!("1g1jc5444r7252367".parse::<Vin>().is_err(), "lower case");
        assert!("WP0ZZZ99ZTS39212Q".parse::<Vin>().is_err());
        assert!("WP0ZZZ99ZTS39212O".parse::<Vin>().is_err());
        assert!("ÄP0ZZZ99ZTS392124".parse::<Vin>().is_err(), "non-ASCII");
    }

    #[test]
    fn serde_forms() {
        let v: Vin = "WP0ZZZ99ZTS392124".parse().unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"WP0ZZZ99ZTS392124\"");
        let bytes = postcard::to_allocvec(&v).unwrap();
        assert_eq!(bytes.len(), 17, "no length prefix on the wire");
        assert_eq!(postcard::from_bytes::<Vin>(&bytes).unwrap(), v);
        let mut bad = bytes.clone();
        bad[3] = b'o';
        assert!(postcard::from_bytes::<Vin>(&bad).is_err());
    }
}
