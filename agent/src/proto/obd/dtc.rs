//! OBD-II DTC lists: the responses of modes 03 (stored), 07 (pending) and 0A (permanent),
//! decoded into [`ObdCode`]s.
//!
//! Does not own: the DTC type itself and its SAE J2012 text (`P0133`) — that is
//! [`rapport_shared::ObdCode`], parsed through [`rapport_shared::DtcCode`]'s `FromStr` — nor
//! the 3-byte UDS DTC ([`crate::proto::uds`]).

use rapport_shared::ObdCode;

use super::{ObdError, positive_body};

/// Which DTC list a request or response is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DtcMode {
    /// Mode 03: confirmed, stored DTCs.
    Stored,
    /// Mode 07: pending DTCs (this or last drive cycle).
    Pending,
    /// Mode 0A: permanent DTCs (cannot be cleared by a tool).
    Permanent,
}

impl DtcMode {
    /// The request SID (0x03, 0x07, 0x0A).
    pub(crate) fn request_sid(self) -> u8 {
        match self {
            Self::Stored => 0x03,
            Self::Pending => 0x07,
            Self::Permanent => 0x0A,
        }
    }
}

/// A decoded mode 03/07/0A response from one ECU.
#[derive(Debug, Clone)]
pub(crate) struct DtcResponse<'a> {
    /// Which list (read by the tests only).
    #[cfg(test)]
    pub(crate) mode: DtcMode,
    /// The count byte the ECU sent (read by the tests only).
    #[cfg(test)]
    pub(crate) declared_count: u8,
    /// The codes (`0000` placeholders skipped).
    pub(crate) codes: DtcIter<'a>,
}

/// Decodes a DTC response in the CAN form: `43 <count> (hi lo){count}` (0x47 for pending,
/// 0x4A for permanent). Bytes beyond `count` pairs are accepted only when they are all zero
/// (padding), since a count that disagrees with real data means a corrupt or merged response.
///
/// # Errors
/// Anything [`super::positive_body`] rejects (empty, negative response, other SID);
/// [`ObdError::TooShort`] without a count byte; [`ObdError::DtcCountMismatch`] when the count
/// and the bytes disagree.
pub(crate) fn parse_dtc_response(
    payload: &[u8],
    mode: DtcMode,
) -> Result<DtcResponse<'_>, ObdError> {
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
        #[cfg(test)]
        mode,
        #[cfg(test)]
        declared_count: declared,
        codes: DtcIter::from_pairs(listed),
    })
}

/// Iterates over two-byte DTCs, skipping `0000` placeholders. An odd trailing byte is not a
/// code: it is left out and kept in [`DtcIter::trailing_byte`].
#[derive(Debug, Clone)]
pub(crate) struct DtcIter<'a> {
    pairs: core::slice::ChunksExact<'a, u8>,
}

impl<'a> DtcIter<'a> {
    /// Raw DTC bytes, two per code, without SID or count byte.
    pub(crate) fn from_pairs(bytes: &'a [u8]) -> Self {
        Self {
            pairs: bytes.chunks_exact(2),
        }
    }

    /// The odd byte left over at the end, if any.
    #[cfg(test)]
    pub(crate) fn trailing_byte(&self) -> Option<u8> {
        self.pairs.remainder().first().copied()
    }
}

impl Iterator for DtcIter<'_> {
    type Item = ObdCode;

    fn next(&mut self) -> Option<ObdCode> {
        self.pairs.by_ref().find_map(|pair| match *pair {
            [0, 0] => None,
            [hi, lo] => Some(ObdCode::new(u16::from_be_bytes([hi, lo]))),
            _ => None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rapport_shared::{DtcCode, DtcError};

    use super::*;

    fn texts(iter: DtcIter<'_>) -> Vec<String> {
        iter.map(|d| d.to_string()).collect()
    }

    /// J2012 text through the shared parser, as config overrides read it.
    fn parse(text: &str) -> Result<ObdCode, DtcError> {
        match text.parse::<DtcCode>()? {
            DtcCode::Obd(c) => Ok(c),
            other => panic!("{text:?} parsed as a non-OBD code {other}"),
        }
    }

    #[test]
    fn j2012_rendering() {
        assert_eq!(ObdCode::new(0x0133).to_string(), "P0133");
        assert_eq!(ObdCode::new(0x4035).to_string(), "C0035");
        assert_eq!(ObdCode::new(0x9234).to_string(), "B1234");
        assert_eq!(ObdCode::new(0xC100).to_string(), "U0100");
        assert_eq!(ObdCode::new(0xFFFF).to_string(), "U3FFF");
        // fleetwise (VECTORS §1a): 01 96 → P0196
        assert_eq!(ObdCode::new(0x0196).to_string(), "P0196");
        // python-OBD single_dtc (VECTORS §1b): 0104 → P0104, 4123 → C0123
        assert_eq!(ObdCode::new(0x0104).to_string(), "P0104");
        assert_eq!(ObdCode::new(0x4123).to_string(), "C0123");
    }

    #[test]
    fn j2012_parsing() {
        assert_eq!(parse("P0133"), Ok(ObdCode::new(0x0133)));
        assert_eq!(parse("U0100"), Ok(ObdCode::new(0xC100)));
        assert_eq!(parse("b1234"), Ok(ObdCode::new(0x9234)));
        assert_eq!(parse("C3fFf"), Ok(ObdCode::new(0x7FFF)));
        for bad in ["", "P013", "P01333", "X0133", "P4133", "P01G3", "P01\u{e9}"] {
            let err = parse(bad).unwrap_err();
            assert!(matches!(err, DtcError::Syntax(_)), "{bad:?}");
        }
        // The shared parser trims surrounding whitespace (config values are hand-typed), so
        // a trailing newline no longer makes the text invalid.
        assert_eq!(parse("P0133\n"), Ok(ObdCode::new(0x0133)));
        assert!(parse("Q0133").unwrap_err().to_string().contains("Q0133"));
        for code in 0..=u16::MAX {
            let c = ObdCode::new(code);
            assert_eq!(parse(&c.to_string()), Ok(c));
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
        assert_eq!(it.next(), Some(ObdCode::new(0x0104)));
        assert_eq!(it.next(), Some(ObdCode::new(0x8003)));
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
