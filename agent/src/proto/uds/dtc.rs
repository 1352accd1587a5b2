//! UDS 0x19 ReadDTCInformation, sub-function 0x02 (reportDTCByStatusMask), the one the poller
//! asks: request bytes, response decoding into the shared [`UdsCode`] and [`UdsStatus`].
//!
//! Does not own: the DTC and status types, their text (`P0133-1C`) and named status bits
//! (`rapport_shared`), snapshot records (0x04), the OEM layout of extended data records, or
//! what a status means for prompting (the fault rules).

use rapport_shared::{UdsCode, UdsStatus};

use super::{Outcome, SID_READ_DTC_INFORMATION, Service, UdsError, positive_body};

/// Sub-function 0x02: reportDTCByStatusMask.
pub(crate) const REPORT_DTC_BY_STATUS_MASK: u8 = 0x02;

/// The 0x19 0x02 request: `19 02 <status mask>` (0xFF asks for every DTC the server keeps).
pub(crate) fn encode_report_dtc_by_status_mask(status_mask: u8) -> [u8; 3] {
    [
        SID_READ_DTC_INFORMATION,
        REPORT_DTC_BY_STATUS_MASK,
        status_mask,
    ]
}

/// The DTC of three record bytes.
fn uds_code(hi: u8, mid: u8, lo: u8) -> UdsCode {
    // `from_bytes` rather than `UdsCode::new`: three bytes always fit in 24 bits, so the
    // range check (and an error path that could never be taken) is left out by type.
    UdsCode::from_bytes([hi, mid, lo])
}

/// One DTC with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DtcRecord {
    /// The 24-bit DTC.
    pub(crate) dtc: UdsCode,
    /// Its status byte.
    pub(crate) status: UdsStatus,
}

/// A decoded 0x19 0x02 response.
#[derive(Debug, Clone)]
pub(crate) struct DtcByStatus<'a> {
    /// The status bits the server supports: decoded with the response, read by no caller but
    /// the tests (the passive decoder takes each DTC's own status).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) availability_mask: UdsStatus,
    /// The DTCs.
    pub(crate) records: DtcRecordIter<'a>,
}

/// Checks SID and sub-function, returns the bytes after them.
fn sub_function_body(payload: &[u8], sub: u8) -> Result<Outcome<&[u8]>, UdsError> {
    let body = match positive_body(payload, SID_READ_DTC_INFORMATION)? {
        Outcome::Positive(body) => body,
        Outcome::Pending => return Ok(Outcome::Pending),
    };
    match body.split_first() {
        None => Err(UdsError::TooShort {
            what: "ReadDTCInformation response",
            len: payload.len(),
            needed: 2,
        }),
        Some((got, _)) if *got != sub => Err(UdsError::WrongSubFunction {
            service: Service(SID_READ_DTC_INFORMATION),
            expected: sub,
            got: *got,
        }),
        Some((_, rest)) => Ok(Outcome::Positive(rest)),
    }
}

/// Decodes `59 02 <availability mask> (<DTC hi> <DTC mid> <DTC lo> <status>)*`.
///
/// Records are checked here, so the iterator cannot fail. Zero padding is tolerated: an
/// all-zero record (DTC 0, status 0) is skipped, and a partial record of zero bytes at the
/// end is ignored.
///
/// # Errors
/// Anything [`super::positive_body`] rejects, [`UdsError::WrongSubFunction`],
/// [`UdsError::TooShort`] without the availability mask, and [`UdsError::TruncatedDtc`] for a
/// partial record holding non-zero bytes.
pub(crate) fn parse_report_dtc_by_status_mask(
    payload: &[u8],
) -> Result<Outcome<DtcByStatus<'_>>, UdsError> {
    let body = match sub_function_body(payload, REPORT_DTC_BY_STATUS_MASK)? {
        Outcome::Positive(body) => body,
        Outcome::Pending => return Ok(Outcome::Pending),
    };
    let Some((&mask, records)) = body.split_first() else {
        return Err(UdsError::TooShort {
            what: "reportDTCByStatusMask response",
            len: payload.len(),
            needed: 3,
        });
    };
    let chunks = records.chunks_exact(4);
    let partial = chunks.remainder();
    if partial.iter().any(|b| *b != 0) {
        return Err(UdsError::TruncatedDtc {
            // SID, sub-function and mask come before the records.
            offset: 3 + records.len() - partial.len(),
            len: partial.len(),
        });
    }
    Ok(Outcome::Positive(DtcByStatus {
        availability_mask: UdsStatus(mask),
        records: DtcRecordIter { chunks },
    }))
}

/// The DTC records of a 0x19 0x02 response; see [`parse_report_dtc_by_status_mask`].
#[derive(Debug, Clone)]
pub(crate) struct DtcRecordIter<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for DtcRecordIter<'_> {
    type Item = DtcRecord;

    fn next(&mut self) -> Option<DtcRecord> {
        self.chunks.by_ref().find_map(|chunk| match *chunk {
            [0, 0, 0, 0] => None,
            [hi, mid, lo, status] => Some(DtcRecord {
                dtc: uds_code(hi, mid, lo),
                status: UdsStatus(status),
            }),
            _ => None,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn records(payload: &[u8]) -> (u8, Vec<(u32, u8)>) {
        let r = parse_report_dtc_by_status_mask(payload)
            .unwrap()
            .positive()
            .unwrap();
        let list = r.records.map(|d| (d.dtc.raw(), d.status.0)).collect();
        (r.availability_mask.0, list)
    }

    #[test]
    fn requests() {
        assert_eq!(encode_report_dtc_by_status_mask(0x5A), [0x19, 0x02, 0x5A]);
    }

    // python-udsoncan test_read_dtc_information.py (VECTORS §3), request 19 02 5A.
    #[test]
    fn udsoncan_report_dtc_by_status_mask() {
        // 59 02 | FB mask | 12 34 56 status 20 | 12 34 57 status 60
        let payload = [
            0x59, 0x02, 0xFB, 0x12, 0x34, 0x56, 0x20, 0x12, 0x34, 0x57, 0x60,
        ];
        assert_eq!(
            records(&payload),
            (0xFB, vec![(0x123456, 0x20), (0x123457, 0x60)])
        );
        // no DTCs
        assert_eq!(records(&[0x59, 0x02, 0xFB]), (0xFB, vec![]));
        // duplicates kept
        let payload = [
            0x59, 0x02, 0xFB, 0x12, 0x34, 0x56, 0x20, 0x12, 0x34, 0x56, 0x60,
        ];
        assert_eq!(
            records(&payload),
            (0xFB, vec![(0x123456, 0x20), (0x123456, 0x60)])
        );
    }

    #[test]
    fn udsoncan_zero_padding_tolerated() {
        let base = [
            0x59, 0x02, 0xFB, 0x12, 0x34, 0x56, 0x20, 0x12, 0x34, 0x57, 0x60,
        ];
        for pad in 1..=5 {
            let mut payload = base.to_vec();
            payload.resize(base.len() + pad, 0);
            let (_, list) = records(&payload);
            assert_eq!(
                list,
                [(0x123456, 0x20), (0x123457, 0x60)],
                "{pad} padding byte(s)"
            );
        }
    }

    #[test]
    fn udsoncan_wrong_sub_function_or_sid() {
        assert_eq!(
            parse_report_dtc_by_status_mask(&[0x59, 0x03, 0xFB]).unwrap_err(),
            UdsError::WrongSubFunction {
                service: Service(0x19),
                expected: 0x02,
                got: 0x03
            }
        );
        assert!(matches!(
            parse_report_dtc_by_status_mask(&[0x6F, 0x02, 0xFB]),
            Err(UdsError::UnexpectedSid { got: 0x6F, .. })
        ));
    }

    #[test]
    fn truncated_and_short() {
        // 12 34 56 without its status byte
        let err =
            parse_report_dtc_by_status_mask(&[0x59, 0x02, 0xFB, 0x12, 0x34, 0x56]).unwrap_err();
        assert_eq!(err, UdsError::TruncatedDtc { offset: 3, len: 3 });
        assert!(err.to_string().contains("byte 3"));
        // a whole record, then 2 non-zero bytes
        assert_eq!(
            parse_report_dtc_by_status_mask(&[0x59, 0x02, 0xFB, 1, 2, 3, 4, 5, 0]).unwrap_err(),
            UdsError::TruncatedDtc { offset: 7, len: 2 }
        );
        for short in [&[0x59][..], &[0x59, 0x02]] {
            assert!(matches!(
                parse_report_dtc_by_status_mask(short),
                Err(UdsError::TooShort { .. })
            ));
        }
        assert!(matches!(
            parse_report_dtc_by_status_mask(&[0x7F, 0x19, 0x78]),
            Ok(Outcome::Pending)
        ));
        assert!(matches!(
            parse_report_dtc_by_status_mask(&[0x7F, 0x19, 0x12]),
            Err(UdsError::Negative { .. })
        ));
    }

    #[test]
    fn udsoncan_status_bits_in_order() {
        // set_byte(0x01, 0x03, 0x07, …, 0xFF) turns the bits on in this order
        for (n, byte) in [0x01u8, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF]
            .into_iter()
            .enumerate()
        {
            let status = UdsStatus(byte);
            for (i, bit) in UdsStatus::BITS.into_iter().enumerate() {
                assert_eq!(status.has(bit), i <= n, "byte 0x{byte:02X} bit {i}");
            }
            assert_eq!(status.names().count(), n + 1);
            assert_eq!(status.names().last(), Some(UdsStatus::NAMES[n]));
        }
        assert_eq!(UdsStatus(0x09).to_string(), "0x09 testFailed|confirmedDTC");
        assert_eq!(UdsStatus(0).to_string(), "0x00");
    }

    #[test]
    fn uds_dtc_text() {
        assert_eq!(uds_code(0x01, 0x33, 0x1C).to_string(), "P0133-1C");
        assert_eq!(uds_code(0xC1, 0x00, 0x00).to_string(), "U0100-00");
        assert_eq!(uds_code(0x12, 0x34, 0x56).to_string(), "P1234-56");
        // Renault ZOE (VECTORS §3): DTC 0x1525F3
        assert_eq!(uds_code(0x15, 0x25, 0xF3).to_string(), "P1525-F3");
        assert_eq!(uds_code(0x15, 0x25, 0xF3).failure_type(), 0xF3);
        // the widest three bytes: a valid code, never the fallback; wider is not a UdsCode
        assert_eq!(uds_code(0xFF, 0xFF, 0xFF).to_string(), "U3FFF-FF");
        assert_eq!(uds_code(0xFF, 0xFF, 0xFF).raw(), 0xFF_FFFF);
        assert!(UdsCode::new(0xFFFF_FFFF).is_err());
    }
}
