//! OBD-II DTCs: the two-byte code as SAE J2012 text (`P0133`, `C0035`, `B1234`, `U0100`)
//! and back, and the DTC lists of modes 03 (stored), 07 (pending) and 0A (permanent).
//!
//! Does not own: the 3-byte UDS DTC with its failure-type byte ([`crate::proto::uds`] renders
//! it using [`render_j2012`] for its two high bytes), nor the shared wire `Dtc` type
//! (`rapport_shared`), with which this one is to be reconciled.

use core::fmt;
use core::str::FromStr;

use super::{DtcText, ObdError, positive_body};

const LETTERS: [u8; 4] = *b"PCBU";
const HEX: [u8; 16] = *b"0123456789ABCDEF";

/// An OBD-II DTC as two bytes; `Display` and `FromStr` use SAE J2012 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dtc(pub u16);

/// SAE J2012 text of a two-byte DTC: bits 15–14 pick P/C/B/U, bits 13–12 the first digit
/// (0–3), the remaining three nibbles are hex digits. `0x0133` → `P0133`, `0xC100` → `U0100`.
pub fn render_j2012(code: u16) -> [u8; 5] {
    let nibble = |shift: u16| HEX[usize::from((code >> shift) & 0xF)];
    [
        LETTERS[usize::from(code >> 14)],
        b'0' + ((code >> 12) & 0x3) as u8,
        nibble(8),
        nibble(4),
        nibble(0),
    ]
}

/// Parses SAE J2012 text (`P0133`; letter case ignored) back into the two-byte code.
///
/// # Errors
/// [`ObdError::BadDtcText`] unless the text is a letter P/C/B/U, a digit 0–3 and three hex
/// digits.
pub fn parse_j2012(text: &str) -> Result<u16, ObdError> {
    let bad = || ObdError::BadDtcText(DtcText::new(text));
    let [letter, first, rest @ ..] = text.as_bytes() else {
        return Err(bad());
    };
    if rest.len() != 3 {
        return Err(bad());
    }
    let system = LETTERS
        .iter()
        .position(|l| *l == letter.to_ascii_uppercase())
        .ok_or_else(bad)? as u16;
    let first = match first {
        b'0'..=b'3' => u16::from(first - b'0'),
        _ => return Err(bad()),
    };
    let mut code = (system << 14) | (first << 12);
    for (i, digit) in rest.iter().enumerate() {
        let value = (*digit as char).to_digit(16).ok_or_else(bad)? as u16;
        code |= value << (8 - 4 * i);
    }
    Ok(code)
}

impl fmt::Display for Dtc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = render_j2012(self.0);
        // render_j2012 writes ASCII only.
        f.write_str(core::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl FromStr for Dtc {
    type Err = ObdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_j2012(s).map(Dtc)
    }
}

/// Which DTC list a request or response is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtcMode {
    /// Mode 03: confirmed, stored DTCs.
    Stored,
    /// Mode 07: pending DTCs (this or last drive cycle).
    Pending,
    /// Mode 0A: permanent DTCs (cannot be cleared by a tool).
    Permanent,
}

impl DtcMode {
    /// The request SID (0x03, 0x07, 0x0A).
    pub fn request_sid(self) -> u8 {
        match self {
            Self::Stored => 0x03,
            Self::Pending => 0x07,
            Self::Permanent => 0x0A,
        }
    }
}

/// A decoded mode 03/07/0A response from one ECU.
#[derive(Debug, Clone)]
pub struct DtcResponse<'a> {
    /// Which list.
    pub mode: DtcMode,
    /// The count byte the ECU sent.
    pub declared_count: u8,
    /// The codes (`0000` placeholders skipped).
    pub codes: DtcIter<'a>,
}

/// Decodes a DTC response in the CAN form: `43 <count> (hi lo){count}` (0x47 for pending,
/// 0x4A for permanent). Bytes beyond `count` pairs are accepted only when they are all zero
/// (padding), since a count that disagrees with real data means a corrupt or merged response.
///
/// # Errors
/// Anything [`super::positive_body`] rejects (empty, negative response, other SID);
/// [`ObdError::TooShort`] without a count byte; [`ObdError::DtcCountMismatch`] when the count
/// and the bytes disagree.
pub fn parse_dtc_response(payload: &[u8], mode: DtcMode) -> Result<DtcResponse<'_>, ObdError> {
    let body = positive_body(payload, mode.request_sid())?;
    let Some((&declared, bytes)) = body.split_first() else {
        return Err(ObdError::TooShort {
            what: "DTC response",
            len: payload.len(),
            needed: 2,
        });
    };
    let mismatch = ObdError::DtcCountMismatch {
        mode: mode.request_sid(),
        declared,
        bytes: bytes.len(),
    };
    let (listed, extra) = bytes
        .split_at_checked(usize::from(declared) * 2)
        .ok_or(mismatch.clone())?;
    if extra.iter().any(|b| *b != 0) {
        return Err(mismatch);
    }
    Ok(DtcResponse {
        mode,
        declared_count: declared,
        codes: DtcIter::from_pairs(listed),
    })
}

/// Iterates over two-byte DTCs, skipping `0000` placeholders. An odd trailing byte is not a
/// code: it is left out and kept in [`DtcIter::trailing_byte`].
#[derive(Debug, Clone)]
pub struct DtcIter<'a> {
    pairs: core::slice::ChunksExact<'a, u8>,
}

impl<'a> DtcIter<'a> {
    /// Raw DTC bytes, two per code, without SID or count byte.
    pub fn from_pairs(bytes: &'a [u8]) -> Self {
        Self {
            pairs: bytes.chunks_exact(2),
        }
    }

    /// The odd byte left over at the end, if any.
    pub fn trailing_byte(&self) -> Option<u8> {
        self.pairs.remainder().first().copied()
    }
}

impl Iterator for DtcIter<'_> {
    type Item = Dtc;

    fn next(&mut self) -> Option<Dtc> {
        self.pairs.by_ref().find_map(|pair| match *pair {
            [0, 0] => None,
            [hi, lo] => Some(Dtc(u16::from_be_bytes([hi, lo]))),
            _ => None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn texts(iter: DtcIter<'_>) -> Vec<String> {
        iter.map(|d| d.to_string()).collect()
    }

    #[test]
    fn j2012_rendering() {
        assert_eq!(&render_j2012(0x0133), b"P0133");
        assert_eq!(&render_j2012(0x4035), b"C0035");
        assert_eq!(&render_j2012(0x9234), b"B1234");
        assert_eq!(&render_j2012(0xC100), b"U0100");
        assert_eq!(&render_j2012(0xFFFF), b"U3FFF");
        // fleetwise (VECTORS §1a): 01 96 → P0196
        assert_eq!(Dtc(0x0196).to_string(), "P0196");
        // python-OBD single_dtc (VECTORS §1b): 0104 → P0104, 4123 → C0123
        assert_eq!(Dtc(0x0104).to_string(), "P0104");
        assert_eq!(Dtc(0x4123).to_string(), "C0123");
    }

    #[test]
    fn j2012_parsing() {
        assert_eq!(parse_j2012("P0133"), Ok(0x0133));
        assert_eq!("U0100".parse::<Dtc>(), Ok(Dtc(0xC100)));
        assert_eq!("b1234".parse::<Dtc>(), Ok(Dtc(0x9234)));
        assert_eq!("C3fFf".parse::<Dtc>(), Ok(Dtc(0x7FFF)));
        for bad in [
            "",
            "P013",
            "P01333",
            "X0133",
            "P4133",
            "P01G3",
            "P01\u{e9}",
            "P0133\n",
        ] {
            let err = bad.parse::<Dtc>().unwrap_err();
            assert!(matches!(err, ObdError::BadDtcText(_)), "{bad:?}");
        }
        assert!(
            "Q0133"
                .parse::<Dtc>()
                .unwrap_err()
                .to_string()
                .contains("Q0133")
        );
        for code in 0..=u16::MAX {
            let text = render_j2012(code);
            assert_eq!(parse_j2012(core::str::from_utf8(&text).unwrap()), Ok(code));
        }
    }

    #[test]
    fn fleetwise_mode_03() {
        // VECTORS §1a: 43 = mode 03 positive, 04 = count, then 01 43 | 41 96 | 81 48 | C1 48
        let payload = [0x43, 0x04, 0x01, 0x43, 0x41, 0x96, 0x81, 0x48, 0xC1, 0x48];
        let r = parse_dtc_response(&payload, DtcMode::Stored).unwrap();
        assert_eq!(r.declared_count, 4);
        assert_eq!(texts(r.codes), ["P0143", "C0196", "B0148", "U0148"]);
    }

    #[test]
    fn count_disagreeing_with_bytes_is_an_error() {
        // VECTORS §1a: count says 4, one present
        let err = parse_dtc_response(&[0x43, 0x04, 0x01, 0x43], DtcMode::Stored).unwrap_err();
        assert_eq!(
            err,
            ObdError::DtcCountMismatch {
                mode: 0x03,
                declared: 4,
                bytes: 2
            }
        );
        assert!(err.to_string().contains("declares 4"));
        // more non-zero bytes than the count covers
        assert!(matches!(
            parse_dtc_response(&[0x43, 0x01, 0x01, 0x43, 0x01, 0x44], DtcMode::Stored),
            Err(ObdError::DtcCountMismatch {
                declared: 1,
                bytes: 4,
                ..
            })
        ));
        // zero padding after the counted codes is fine
        let r = parse_dtc_response(&[0x43, 0x01, 0x01, 0x43, 0x00, 0x00, 0x00], DtcMode::Stored)
            .unwrap();
        assert_eq!(texts(r.codes), ["P0143"]);
        assert!(matches!(
            parse_dtc_response(&[0x43], DtcMode::Stored),
            Err(ObdError::TooShort { .. })
        ));
    }

    #[test]
    fn python_obd_count_byte_decides() {
        // python-OBD test_protocol_can.py (VECTORS §1b), after ISO-TP: 43 | 04 = count |
        // 00 01 | 02 03 | 04 05 | 06 07
        let payload = [0x43, 0x04, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
        let r = parse_dtc_response(&payload, DtcMode::Stored).unwrap();
        assert_eq!(texts(r.codes), ["P0001", "P0203", "P0405", "P0607"]);
    }

    #[test]
    fn python_obd_raw_pairs() {
        // VECTORS §1b dtc decoder: 0104 8003 4123
        let it = DtcIter::from_pairs(&[0x01, 0x04, 0x80, 0x03, 0x41, 0x23]);
        assert_eq!(texts(it), ["P0104", "B0003", "C0123"]);
        // odd trailing byte 41: the incomplete pair is dropped
        let mut it = DtcIter::from_pairs(&[0x01, 0x04, 0x80, 0x03, 0x41]);
        assert_eq!(it.trailing_byte(), Some(0x41));
        assert_eq!(it.next(), Some(Dtc(0x0104)));
        assert_eq!(it.next(), Some(Dtc(0x8003)));
        assert_eq!(it.next(), None);
        // 0000 pairs are placeholders
        let it = DtcIter::from_pairs(&[0x00, 0x00, 0x01, 0x04, 0x00, 0x00]);
        assert_eq!(texts(it), ["P0104"]);
    }

    #[test]
    fn real_car_29_bit_pending_from_ecu_0x11() {
        // python-OBD #254 (VECTORS §1c): 18DAF111: 47 = mode 07 positive, 02 = count,
        // 22 6D | 22 6E
        assert_eq!(
            super::super::ecu_from_response_id(0x18DA_F111, true),
            Some(0x11)
        );
        let r =
            parse_dtc_response(&[0x47, 0x02, 0x22, 0x6D, 0x22, 0x6E], DtcMode::Pending).unwrap();
        assert_eq!(r.mode, DtcMode::Pending);
        assert_eq!(texts(r.codes), ["P226D", "P226E"]);
        // 18DAF140: 47 00 → ECU 0x40 has no pending DTC
        let r = parse_dtc_response(&[0x47, 0x00], DtcMode::Pending).unwrap();
        assert_eq!(r.codes.count(), 0);
    }

    #[test]
    fn jaguar_two_ecus_without_dtcs() {
        // kotlin-obd-api #30 (VECTORS §1c): `4300 4300` and `4700 4700` are two ECUs' payloads,
        // each count 0: no DTCs (not C0300 / C0700).
        for (payload, mode) in [
            ([0x43, 0x00], DtcMode::Stored),
            ([0x47, 0x00], DtcMode::Pending),
        ] {
            for _ecu in 0..2 {
                let r = parse_dtc_response(&payload, mode).unwrap();
                assert_eq!(r.declared_count, 0);
                assert_eq!(r.codes.count(), 0);
            }
        }
        // the two answers glued into one payload are rejected, not read as C0300
        assert!(matches!(
            parse_dtc_response(&[0x43, 0x00, 0x43, 0x00], DtcMode::Stored),
            Err(ObdError::DtcCountMismatch {
                declared: 0,
                bytes: 2,
                ..
            })
        ));
    }

    #[test]
    fn wrong_mode_and_negative() {
        assert_eq!(
            parse_dtc_response(&[0x47, 0x00], DtcMode::Stored).unwrap_err(),
            ObdError::UnexpectedSid {
                expected: 0x43,
                got: 0x47
            }
        );
        assert!(matches!(
            parse_dtc_response(&[0x7F, 0x0A, 0x11], DtcMode::Permanent),
            Err(ObdError::Negative { service: 0x0A, .. })
        ));
        let r = parse_dtc_response(&[0x4A, 0x01, 0xC1, 0x00], DtcMode::Permanent).unwrap();
        assert_eq!(texts(r.codes), ["U0100"]);
    }
}
