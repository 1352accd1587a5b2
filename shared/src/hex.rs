//! Hexadecimal text: the one home of the helpers that print bytes as hex digits and read them
//! back (token digests, store dumps, raw CAN payloads in replay output).
//!
//! Owns: the digits. Does not own: what the bytes mean.

use core::fmt::Write as _;

/// Lower-case hex digits, two per byte, no separator: `[0xAB, 0x01]` → `"ab01"`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Upper-case hex digits, two per byte, one space between bytes, as `candump` prints a
/// payload: `[0xAB, 0x01]` → `"AB 01"`.
pub fn encode_spaced(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The value of one hex digit (either case), or `None`.
pub const fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Exactly `N` bytes from `2 × N` hex digits (either case, no separator), or `None` for any
/// other text.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let b = text.as_bytes();
    if b.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        *slot = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        assert_eq!(encode(&[0xAB, 0x01, 0x00]), "ab0100");
        assert_eq!(encode_spaced(&[0xAB, 0x01]), "AB 01");
        assert_eq!(encode_spaced(&[]), "");
        assert_eq!(decode_array::<2>("aB01"), Some([0xAB, 0x01]));
        assert_eq!(decode_array::<2>("ab0"), None);
        assert_eq!(decode_array::<2>("ab0g"), None);
        assert_eq!(decode_array::<1>("+1"), None);
        assert_eq!(decode_array::<1>("é"), None);
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::array::uniform32(any::<u8>())) {
            prop_assert_eq!(decode_array::<32>(&encode(&bytes)), Some(bytes));
            prop_assert_eq!(decode_array::<32>(&encode(&bytes).to_uppercase()), Some(bytes));
        }
    }
}
