//! OBD-II (SAE J1979) over CAN: CAN ids and decoding the ISO-TP-reassembled responses of
//! modes 01 (current data) and 03/07/0A (stored, pending, permanent DTCs).
//!
//! Owns: CAN ids and their mapping to ECUs, positive and negative response decoding. Does not
//! own: the request bytes (the poller writes its few), ISO-TP framing (PCI bytes never reach
//! this module, see [`crate::proto::isotp`]), timing and retries (the caller's), or the DTC
//! types and their SAE J2012 text (`rapport_shared::ObdCode`, decoded here directly).
//!
//! Decoding never allocates: values borrow the payload or are small `Copy` types.

pub(crate) mod dtc;
pub(crate) mod pid;

pub(crate) use dtc::{DtcMode, parse_dtc_response};
pub(crate) use pid::{PidValue, SupportedPids, parse_current_data, pid_data_len};

use crate::proto::uds::Nrc;

/// 11-bit functional (broadcast) request id: every emissions ECU answers.
pub(crate) const FUNCTIONAL_REQUEST_ID: u16 = 0x7DF;
/// 11-bit physical request id of ECU 0; ECU `n` (0–7) is this plus `n`.
pub(crate) const PHYSICAL_REQUEST_ID_BASE: u16 = 0x7E0;
/// 11-bit response id of ECU 0; ECU `n` (0–7) answers on this plus `n`.
pub(crate) const RESPONSE_ID_BASE: u16 = 0x7E8;
/// 29-bit functional request id (ISO 15765-4 normal fixed addressing, tester 0xF1).
pub(crate) const FUNCTIONAL_REQUEST_ID_29: u32 = 0x18DB_33F1;
/// 29-bit physical request prefix: `0x18DA<ecu>F1`.
pub(crate) const PHYSICAL_REQUEST_ID_29_BASE: u32 = 0x18DA_00F1;
/// 29-bit response prefix: `0x18DAF1<ecu>`.
pub(crate) const RESPONSE_ID_29_BASE: u32 = 0x18DA_F100;

/// A positive response's SID is the request's plus this.
pub(crate) const POSITIVE_RESPONSE_OFFSET: u8 = 0x40;
/// The SID of a negative response (`7F <service> <nrc>`), shared with UDS.
pub(crate) const NEGATIVE_RESPONSE_SID: u8 = 0x7F;
/// At most this many PIDs fit one mode 01 request (J1979 on CAN).
pub(crate) const MAX_PIDS_PER_REQUEST: usize = 6;

/// The 11-bit physical request id of ECU `ecu` (0–7), `None` beyond 7.
pub(crate) fn physical_request_id(ecu: u8) -> Option<u16> {
    (ecu <= 7).then(|| PHYSICAL_REQUEST_ID_BASE + u16::from(ecu))
}

/// The 29-bit physical request id `0x18DA<ecu>F1` of ECU address `ecu`.
pub(crate) fn physical_request_id_29(ecu: u8) -> u32 {
    PHYSICAL_REQUEST_ID_29_BASE | (u32::from(ecu) << 8)
}

/// The ECU a response came from: 0x7E8–0x7EF → 0–7 (11-bit), `0x18DAF1xx` → `xx` (29-bit).
/// `None` for any other id, so the caller can ignore unrelated traffic.
pub(crate) fn ecu_from_response_id(raw_id: u32, extended: bool) -> Option<u8> {
    if extended {
        (raw_id & 0x1FFF_FF00 == RESPONSE_ID_29_BASE).then_some((raw_id & 0xFF) as u8)
    } else {
        let base = u32::from(RESPONSE_ID_BASE);
        (base..=base + 7)
            .contains(&raw_id)
            .then(|| (raw_id - base) as u8)
    }
}

/// Everything that can be wrong with an OBD-II request or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObdError {
    /// The payload had no bytes at all.
    #[error("OBD-II response is empty")]
    Empty,
    /// The ECU refused (`7F <service> <nrc>`); `nrc` 0x78 means "wait, answer follows".
    #[error("OBD-II negative response to mode 0x{service:02X}: {nrc}")]
    Negative {
        /// The mode the ECU refused.
        service: u8,
        /// Why.
        nrc: Nrc,
    },
    /// A response whose SID is not the one expected (nor a negative response).
    #[error("OBD-II response: expected SID 0x{expected:02X}, got 0x{got:02X}")]
    UnexpectedSid {
        /// The positive-response SID wanted.
        expected: u8,
        /// The SID found.
        got: u8,
    },
    /// A negative response of fewer than 3 bytes.
    #[error("OBD-II negative response truncated: {len} byte(s), need 3")]
    TruncatedNegative {
        /// Bytes present.
        len: usize,
    },
    /// A mode 01 response named a PID whose length this decoder does not know, so the rest
    /// of the response cannot be walked.
    #[error("OBD-II mode 01 response: unknown PID 0x{pid:02X} at byte {offset}")]
    UnknownPid {
        /// The PID.
        pid: u8,
        /// Its offset in the payload.
        offset: usize,
    },
    /// A PID's data ran past the end of the payload.
    #[error("OBD-II mode 01 PID 0x{pid:02X}: needs {needed} data byte(s), {available} left")]
    TruncatedPid {
        /// The PID.
        pid: u8,
        /// Its data length.
        needed: usize,
        /// Bytes left in the payload.
        available: usize,
    },
    /// A DTC response's count byte disagrees with the bytes that follow it.
    #[error(
        "OBD-II mode 0x{mode:02X} response declares {declared} DTC(s) but carries {bytes} DTC byte(s)"
    )]
    DtcCountMismatch {
        /// The DTC mode (0x03, 0x07, 0x0A).
        mode: u8,
        /// The count byte.
        declared: u8,
        /// DTC bytes present after it.
        bytes: usize,
    },
    /// A response too short for what its SID promises.
    #[error("OBD-II {what}: {len} byte(s), need at least {needed}")]
    TooShort {
        /// What was being decoded.
        what: &'static str,
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// A mode 01 request with no PIDs or more than [`MAX_PIDS_PER_REQUEST`].
    #[error("OBD-II mode 01 request: {0} PIDs, need 1 to 6")]
    PidCount(usize),
}

impl ObdError {
    /// True for `7F xx 78` (requestCorrectlyReceived-ResponsePending): keep waiting (P2*).
    #[cfg(test)]
    pub(crate) fn is_response_pending(&self) -> bool {
        matches!(self, Self::Negative { nrc, .. } if *nrc == Nrc::RESPONSE_PENDING)
    }
}

/// Checks a payload's SID against the positive response to `request_sid` and returns the
/// bytes after the SID.
///
/// # Errors
/// [`ObdError::Empty`], [`ObdError::Negative`] (named NRC), [`ObdError::TruncatedNegative`],
/// or [`ObdError::UnexpectedSid`].
pub(crate) fn positive_body(payload: &[u8], request_sid: u8) -> Result<&[u8], ObdError> {
    let expected = request_sid.wrapping_add(POSITIVE_RESPONSE_OFFSET);
    match payload {
        [] => Err(ObdError::Empty),
        [NEGATIVE_RESPONSE_SID, service, nrc, ..] => Err(ObdError::Negative {
            service: *service,
            nrc: Nrc(*nrc),
        }),
        [NEGATIVE_RESPONSE_SID, ..] => Err(ObdError::TruncatedNegative { len: payload.len() }),
        [sid, body @ ..] if *sid == expected => Ok(body),
        [sid, ..] => Err(ObdError::UnexpectedSid {
            expected,
            got: *sid,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn response_ids_map_to_ecus() {
        assert_eq!(ecu_from_response_id(0x7E8, false), Some(0));
        assert_eq!(ecu_from_response_id(0x7EF, false), Some(7));
        assert_eq!(ecu_from_response_id(0x7E7, false), None);
        assert_eq!(ecu_from_response_id(0x7F0, false), None);
        // python-OBD #254 (VECTORS §1c): 29-bit response from ECU 0x11.
        assert_eq!(ecu_from_response_id(0x18DA_F111, true), Some(0x11));
        assert_eq!(ecu_from_response_id(0x18DA_F140, true), Some(0x40));
        // a request id is not a response id
        assert_eq!(ecu_from_response_id(0x18DA_11F1, true), None);
        assert_eq!(ecu_from_response_id(0x7E8, true), None);
    }

    #[test]
    fn request_ids() {
        assert_eq!(physical_request_id(0), Some(0x7E0));
        assert_eq!(physical_request_id(7), Some(0x7E7));
        assert_eq!(physical_request_id(8), None);
        assert_eq!(physical_request_id_29(0x11), 0x18DA_11F1);
    }

    #[test]
    fn negative_responses_are_named() {
        // 7F = negative, 01 = mode refused, 12 = subFunctionNotSupported
        let err = positive_body(&[0x7F, 0x01, 0x12], 0x01).unwrap_err();
        assert_eq!(
            err,
            ObdError::Negative {
                service: 0x01,
                nrc: Nrc(0x12)
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("0x01") && text.contains("subFunctionNotSupported"),
            "{text}"
        );
        assert!(!err.is_response_pending());
        // 7F 09 78: response pending
        assert!(
            positive_body(&[0x7F, 0x09, 0x78], 0x09)
                .unwrap_err()
                .is_response_pending()
        );
        assert_eq!(
            positive_body(&[0x7F, 0x01], 0x01),
            Err(ObdError::TruncatedNegative { len: 2 })
        );
        assert_eq!(positive_body(&[], 0x01), Err(ObdError::Empty));
    }

    #[test]
    fn unexpected_sid_is_named() {
        // aws-iot-fleetwise-edge (VECTORS §1a): `78 09 99` is not a positive response
        let err = positive_body(&[0x78, 0x09, 0x99], 0x01).unwrap_err();
        assert_eq!(
            err,
            ObdError::UnexpectedSid {
                expected: 0x41,
                got: 0x78
            }
        );
        assert!(err.to_string().contains("0x78"));
    }

    mod never_panics {
        use super::super::dtc::DtcIter;
        use super::super::*;
        use proptest::prelude::*;

        fn payload() -> impl Strategy<Value = Vec<u8>> {
            crate::proto::sid_then(
                vec![0x41, 0x43, 0x47, 0x49, 0x4A, 0x7F, 0x00],
                prop::collection::vec(any::<u8>(), 0..40),
            )
        }

        proptest! {
            #[test]
            fn decoders_take_any_bytes(bytes in payload(), raw in prop::collection::vec(any::<u8>(), 0..16)) {
                for input in [&bytes[..], &raw[..]] {
                    if let Ok(it) = parse_current_data(input) {
                        let mut set = SupportedPids::new();
                        for v in it.flatten() {
                            set.absorb(&v);
                            let _ = (v.pid(), v.physical());
                        }
                        let _ = set.next_query();
                    }
                    for mode in [DtcMode::Stored, DtcMode::Pending, DtcMode::Permanent] {
                        if let Ok(r) = parse_dtc_response(input, mode) {
                            prop_assert!(r.codes.count() <= usize::from(r.declared_count));
                        }
                    }
                    for dtc in DtcIter::from_pairs(input) {
                        prop_assert_eq!(
                            dtc.to_string().parse::<rapport_shared::DtcCode>(),
                            Ok(rapport_shared::DtcCode::Obd(dtc))
                        );
                    }
                    if let Ok(text) = core::str::from_utf8(input) {
                        let _ = text.parse::<rapport_shared::DtcCode>();
                    }
                }
            }

            #[test]
            fn walked_pids_cover_the_payload(pids in prop::collection::vec(prop::sample::select(vec![0x04u8, 0x0C, 0x0D, 0x1F, 0x31, 0xA6]), 1..6)) {
                // Build a response from known PIDs; the walk must give them all back in order.
                let mut payload = vec![0x41];
                for pid in &pids {
                    payload.push(*pid);
                    payload.extend(std::iter::repeat_n(0x11, pid_data_len(*pid).unwrap()));
                }
                let got: Vec<u8> = parse_current_data(&payload).unwrap().map(|v| v.unwrap().pid()).collect();
                prop_assert_eq!(got, pids);
            }
        }
    }
}
