//! Where one DBC signal's bits sit in a frame, and how to pull them out.
//!
//! Owns the two DBC bit numberings (Intel `@1`, Motorola `@0` with its "sawtooth" start bit)
//! and two's-complement sign extension. It knows nothing of DBC files, scaling or
//! multiplexing: those live in the parent module and in `plan`.

/// The largest frame a layout may address: CAN FD, 64 bytes.
pub(crate) const MAX_FRAME_BYTES: usize = 64;

const MAX_FRAME_BITS: u64 = (MAX_FRAME_BYTES * 8) as u64;

/// A signal's byte order as the DBC gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    /// `@1`, Intel: the start bit is the least significant bit; bits run upward through
    /// the frame.
    LittleEndian,
    /// `@0`, Motorola: the start bit is the most significant bit, numbered the DBC way
    /// (bit 7 of byte 0 is 7, bit 0 of byte 1 is 8, ...); less significant bits follow bit
    /// 7→0 within a byte, then on into the next byte.
    BigEndian,
}

/// Why a signal's start bit and length cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// A signal of no bits.
    #[error("length 0")]
    ZeroLength,
    /// Signals are decoded into 64-bit integers.
    #[error("length {0} is over 64 bits")]
    TooLong(u64),
    /// The bits run past the 64 bytes of the largest CAN FD frame.
    #[error("start bit {start_bit} with length {length} runs past a 64-byte frame")]
    PastLargestFrame {
        /// The DBC start bit.
        start_bit: u64,
        /// The length in bits.
        length: u64,
    },
}

/// A validated signal position: start bit, length, byte order, signedness, with the byte
/// span and shift precomputed so extraction is a short loop and a mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BitLayout {
    start_bit: u16,
    length: u8,
    order: ByteOrder,
    signed: bool,
    first_byte: u8,
    end_byte: u8,
    shift: u8,
}

impl BitLayout {
    /// Checks a DBC position and precomputes how to read it.
    ///
    /// # Errors
    /// [`LayoutError`] if the length is 0 or over 64, or the bits leave a 64-byte frame.
    pub(crate) fn new(
        start_bit: u64,
        length: u64,
        order: ByteOrder,
        signed: bool,
    ) -> Result<Self, LayoutError> {
        if length == 0 {
            return Err(LayoutError::ZeroLength);
        }
        if length > 64 {
            return Err(LayoutError::TooLong(length));
        }
        let past = LayoutError::PastLargestFrame { start_bit, length };
        if start_bit >= MAX_FRAME_BITS {
            return Err(past);
        }
        // Both orders become a span of "linear" bit positions [first, first + length):
        // Intel counts from the LSB of byte 0, Motorola from the MSB of byte 0.
        let linear = match order {
            ByteOrder::LittleEndian => start_bit,
            ByteOrder::BigEndian => (start_bit / 8) * 8 + 7 - start_bit % 8,
        };
        if linear + length > MAX_FRAME_BITS {
            return Err(past);
        }
        let first_byte = linear / 8;
        let end_byte = (linear + length - 1) / 8 + 1;
        let shift = match order {
            ByteOrder::LittleEndian => linear % 8,
            // Bytes are read most significant first, so the signal's LSB sits this far
            // above the last byte's bit 0.
            ByteOrder::BigEndian => (end_byte - first_byte) * 8 - linear % 8 - length,
        };
        // All values are below 512 here, so the narrowing casts cannot truncate.
        Ok(Self {
            start_bit: start_bit as u16,
            length: length as u8,
            order,
            signed,
            first_byte: first_byte as u8,
            end_byte: end_byte as u8,
            shift: shift as u8,
        })
    }

    /// The length in bits (1..=64).
    pub(crate) fn length(&self) -> u8 {
        self.length
    }

    /// Whether the raw value is two's complement.
    pub(crate) fn is_signed(&self) -> bool {
        self.signed
    }

    /// How many data bytes a frame needs for this signal to be in it.
    pub(crate) fn bytes_needed(&self) -> usize {
        usize::from(self.end_byte)
    }

    /// The signal's bits, zero-extended; `None` if `data` is shorter than
    /// [`bytes_needed`](Self::bytes_needed).
    #[inline]
    pub(crate) fn extract(&self, data: &[u8]) -> Option<u64> {
        let bytes = data.get(usize::from(self.first_byte)..usize::from(self.end_byte))?;
        // At most 9 bytes (64 bits starting mid-byte): a u128 holds them.
        let mut acc: u128 = 0;
        match self.order {
            ByteOrder::LittleEndian => {
                for (i, b) in bytes.iter().enumerate() {
                    acc |= u128::from(*b) << (8 * i);
                }
            }
            ByteOrder::BigEndian => {
                for b in bytes {
                    acc = (acc << 8) | u128::from(*b);
                }
            }
        }
        Some((acc >> self.shift) as u64 & self.mask())
    }

    /// Two's-complement sign extension of a `length`-bit value.
    #[inline]
    pub(crate) fn sign_extend(&self, bits: u64) -> i64 {
        let len = u32::from(self.length);
        if len < 64 && (bits >> (len - 1)) & 1 == 1 {
            (bits | !self.mask()) as i64
        } else {
            bits as i64
        }
    }

    fn mask(&self) -> u64 {
        u64::MAX >> (64 - u32::from(self.length))
    }
}

/// Test-only encoder: writes `raw` into `data` bit by bit, walking the DBC numbering
/// directly rather than the precomputed span, so it checks `extract` independently.
#[cfg(test)]
pub(crate) fn encode(layout: &BitLayout, raw: u64, data: &mut [u8]) {
    let len = u64::from(layout.length);
    let start = u64::from(layout.start_bit);
    for i in 0..len {
        // i counts from the signal's least significant bit.
        let pos = match layout.order {
            ByteOrder::LittleEndian => start + i,
            ByteOrder::BigEndian => {
                // Walk from the MSB (the start bit) down `len - 1 - i` places, sawtooth style.
                let mut p = start;
                for _ in 0..(len - 1 - i) {
                    p = if p % 8 == 0 { p + 15 } else { p - 1 };
                }
                p
            }
        };
        let byte = (pos / 8) as usize;
        let bit = pos % 8;
        if (raw >> i) & 1 == 1 {
            data[byte] |= 1 << bit;
        } else {
            data[byte] &= !(1 << bit);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn motorola_start_bit_is_msb() {
        // motohawk.dbc Temperature 0|12@0-: MSB is bit 0 of byte 0, then all of byte 1,
        // then the top three bits of byte 2.
        let l = BitLayout::new(0, 12, ByteOrder::BigEndian, true).unwrap();
        assert_eq!(l.bytes_needed(), 3);
        // C0 06 E0: 0 | 0000_0110 | 111 -> 0b0000_0011_0111 = 55.
        assert_eq!(l.extract(&[0xC0, 0x06, 0xE0]), Some(55));
        assert_eq!(l.extract(&[0xC0, 0x06]), None, "one byte short");
    }

    #[test]
    fn sign_extension() {
        let l = BitLayout::new(0, 12, ByteOrder::LittleEndian, true).unwrap();
        assert_eq!(l.sign_extend(0x801), -2047);
        assert_eq!(l.sign_extend(0x7FF), 2047);
        let l64 = BitLayout::new(0, 64, ByteOrder::LittleEndian, true).unwrap();
        assert_eq!(l64.sign_extend(u64::MAX - 4), -5);
    }

    #[test]
    fn rejects_bad_layouts() {
        assert_eq!(
            BitLayout::new(0, 0, ByteOrder::LittleEndian, false),
            Err(LayoutError::ZeroLength)
        );
        assert_eq!(
            BitLayout::new(0, 65, ByteOrder::LittleEndian, false),
            Err(LayoutError::TooLong(65))
        );
        // Intel: bits 500..=515 leave the 512-bit frame.
        assert!(BitLayout::new(500, 16, ByteOrder::LittleEndian, false).is_err());
        // Motorola 7|64 starting in the last byte runs off the end.
        assert!(BitLayout::new(511, 9, ByteOrder::BigEndian, false).is_err());
        assert!(BitLayout::new(u64::MAX, 8, ByteOrder::BigEndian, false).is_err());
        // Motorola, one bit at bit 0 of the last byte: the very last bit, fits.
        assert!(BitLayout::new(504, 1, ByteOrder::BigEndian, false).is_ok());
    }

    fn layout_strategy() -> impl Strategy<Value = BitLayout> {
        (1u64..=64, any::<bool>(), any::<bool>(), any::<u16>()).prop_map(
            |(len, big, signed, pick)| {
                let span = MAX_FRAME_BITS - len + 1;
                let linear = u64::from(pick) % span;
                if big {
                    let start = (linear / 8) * 8 + 7 - linear % 8;
                    BitLayout::new(start, len, ByteOrder::BigEndian, signed).unwrap()
                } else {
                    BitLayout::new(linear, len, ByteOrder::LittleEndian, signed).unwrap()
                }
            },
        )
    }

    proptest! {
        #[test]
        fn encode_then_extract_round_trips(
            layout in layout_strategy(),
            value in any::<u64>(),
            background in proptest::collection::vec(any::<u8>(), MAX_FRAME_BYTES),
        ) {
            let raw = value & layout.mask();
            let mut data = background.clone();
            encode(&layout, raw, &mut data);
            prop_assert_eq!(layout.extract(&data), Some(raw));
            // Only the signal's bytes may change.
            for (i, (a, b)) in data.iter().zip(&background).enumerate() {
                if i < usize::from(layout.first_byte) || i >= layout.bytes_needed() {
                    prop_assert_eq!(a, b);
                }
            }
            // Signed: the i64 read back equals the two's-complement value of the bits.
            if layout.is_signed() {
                let len = u32::from(layout.length());
                let expect = if len == 64 {
                    raw as i64
                } else if raw >> (len - 1) & 1 == 1 {
                    (i128::from(raw) - (1i128 << len)) as i64
                } else {
                    raw as i64
                };
                prop_assert_eq!(layout.sign_extend(raw), expect);
            }
            // One byte short is an error, never a wrong value.
            prop_assert_eq!(layout.extract(&data[..layout.bytes_needed() - 1]), None);
        }
    }
}
