//! UDS (ISO 14229) on ISO-TP-reassembled payloads: 0x22 ReadDataByIdentifier against a
//! configured DID table, 0x19 ReadDTCInformation (sub-functions 0x01, 0x02, 0x06), negative
//! responses with named NRCs, and 0x78 responsePending surfaced as [`Outcome::Pending`].
//!
//! Owns: request bytes, response decoding, the default P2/P2* times. Does not own: ISO-TP
//! framing (no PCI bytes here), sessions, security access, or the waiting itself — the caller
//! keeps the clock and re-arms its timer with [`P2_STAR_DEFAULT`] on `Pending`.
//!
//! Decoding never allocates: records borrow the payload and the DID table.

pub(crate) mod did;
pub(crate) mod dtc;

pub(crate) use did::{DidKind, DidSpec, DidTable, DidValue, parse_read_data_by_identifier};
pub(crate) use dtc::{
    DtcRecord, encode_report_dtc_by_status_mask, parse_report_dtc_by_status_mask,
};

use core::fmt;
use core::time::Duration;

/// Default P2* server time: how long to wait after each `0x78` responsePending.
pub(crate) const P2_STAR_DEFAULT: Duration = Duration::from_millis(5000);

/// ReadDataByIdentifier.
pub(crate) const SID_READ_DATA_BY_IDENTIFIER: u8 = 0x22;
/// ReadDTCInformation.
pub(crate) const SID_READ_DTC_INFORMATION: u8 = 0x19;
/// The SID of every negative response: `7F <service> <nrc>`.
pub(crate) const NEGATIVE_RESPONSE_SID: u8 = 0x7F;
/// A positive response's SID is the request's plus this.
pub(crate) const POSITIVE_RESPONSE_OFFSET: u8 = 0x40;

/// A negative response code (ISO 14229-1 annex A).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nrc(pub u8);

impl Nrc {
    /// 0x78 requestCorrectlyReceived-ResponsePending: the answer follows within P2*.
    pub(crate) const RESPONSE_PENDING: Nrc = Nrc(0x78);

    /// The standard name, or `None` for a code this table does not know.
    pub(crate) fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x10 => "generalReject",
            0x11 => "serviceNotSupported",
            0x12 => "subFunctionNotSupported",
            0x13 => "incorrectMessageLengthOrInvalidFormat",
            0x14 => "responseTooLong",
            0x21 => "busyRepeatRequest",
            0x22 => "conditionsNotCorrect",
            0x24 => "requestSequenceError",
            0x25 => "noResponseFromSubnetComponent",
            0x26 => "failurePreventsExecutionOfRequestedAction",
            0x31 => "requestOutOfRange",
            0x33 => "securityAccessDenied",
            0x35 => "invalidKey",
            0x36 => "exceedNumberOfAttempts",
            0x37 => "requiredTimeDelayNotExpired",
            0x70 => "uploadDownloadNotAccepted",
            0x71 => "transferDataSuspended",
            0x72 => "generalProgrammingFailure",
            0x73 => "wrongBlockSequenceCounter",
            0x78 => "requestCorrectlyReceived-ResponsePending",
            0x7E => "subFunctionNotSupportedInActiveSession",
            0x7F => "serviceNotSupportedInActiveSession",
            _ => return None,
        })
    }
}

impl fmt::Display for Nrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (NRC 0x{:02X})", self.0),
            None => write!(f, "NRC 0x{:02X}", self.0),
        }
    }
}

/// The name of a UDS service (or OBD-II mode) for messages, `None` if unknown here.
pub(crate) fn service_name(sid: u8) -> Option<&'static str> {
    Some(match sid {
        0x10 => "DiagnosticSessionControl",
        0x11 => "ECUReset",
        0x14 => "ClearDiagnosticInformation",
        0x19 => "ReadDTCInformation",
        0x22 => "ReadDataByIdentifier",
        0x27 => "SecurityAccess",
        0x28 => "CommunicationControl",
        0x2E => "WriteDataByIdentifier",
        0x31 => "RoutineControl",
        0x3E => "TesterPresent",
        0x85 => "ControlDTCSetting",
        _ => return None,
    })
}

/// A service id shown with its name where known: `0x22 ReadDataByIdentifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service(pub u8);

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match service_name(self.0) {
            Some(name) => write!(f, "0x{:02X} {name}", self.0),
            None => write!(f, "0x{:02X}", self.0),
        }
    }
}

/// What a response to a request turned out to be, when it is not an error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome<T> {
    /// A positive response, decoded.
    Positive(T),
    /// `7F <sid> 78`: the server is working on it; wait up to P2* for the real answer.
    Pending,
}

impl<T> Outcome<T> {
    /// The positive value, `None` while pending.
    #[cfg(test)]
    pub(crate) fn positive(self) -> Option<T> {
        match self {
            Self::Positive(v) => Some(v),
            Self::Pending => None,
        }
    }
}

/// Everything that can be wrong with a UDS request, response or DID table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdsError {
    /// The payload had no bytes at all.
    #[error("UDS response is empty")]
    Empty,
    /// The server refused the request.
    #[error("UDS negative response to {service}: {nrc}")]
    Negative {
        /// The refused service.
        service: Service,
        /// Why.
        nrc: Nrc,
    },
    /// A positive response of another service than the one asked.
    #[error("UDS response to {expected}: unexpected SID 0x{got:02X}")]
    UnexpectedSid {
        /// The service asked.
        expected: Service,
        /// The SID found.
        got: u8,
    },
    /// A negative response about another service than the one asked.
    #[error("UDS response to {expected}: negative response ({nrc}) is about {got}")]
    UnexpectedNegative {
        /// The service asked.
        expected: Service,
        /// The service the negative response names.
        got: Service,
        /// Its NRC.
        nrc: Nrc,
    },
    /// A positive response for another sub-function than the one asked.
    #[error("UDS response to {service}: expected sub-function 0x{expected:02X}, got 0x{got:02X}")]
    WrongSubFunction {
        /// The service.
        service: Service,
        /// The sub-function asked.
        expected: u8,
        /// The sub-function found.
        got: u8,
    },
    /// A response shorter than its fixed header.
    #[error("UDS {what}: {len} byte(s), need at least {needed}")]
    TooShort {
        /// What was being decoded.
        what: &'static str,
        /// Bytes present.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// A 0x22 response named a DID missing from the table, so the rest cannot be walked.
    #[error(
        "UDS ReadDataByIdentifier response: DID 0x{did:04X} at byte {offset} is not in the DID table"
    )]
    UnknownDid {
        /// The DID.
        did: u16,
        /// Its offset in the payload.
        offset: usize,
    },
    /// A DID identifier or its data ran past the end of the payload.
    #[error(
        "UDS ReadDataByIdentifier response: DID 0x{did:04X} needs {needed} byte(s), {available} left"
    )]
    TruncatedDid {
        /// The DID (or the partial identifier's first byte).
        did: u16,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// A DID configured as ASCII carried other bytes.
    #[error("UDS DID 0x{did:04X} is configured as ASCII but holds a non-ASCII byte")]
    NotAscii {
        /// The DID.
        did: u16,
    },
    /// A 0x19 response whose DTC records do not divide into 4-byte entries.
    #[error(
        "UDS ReadDTCInformation response: truncated DTC record at byte {offset} ({len} byte(s) of 4)"
    )]
    TruncatedDtc {
        /// Offset of the partial record in the payload.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// A request with no DIDs.
    #[error("UDS ReadDataByIdentifier request needs at least one DID")]
    NoDids,
    /// The DID table is unusable.
    #[error("UDS DID table: DID 0x{did:04X}: {problem}")]
    BadDidSpec {
        /// The DID whose spec is wrong.
        did: u16,
        /// What is wrong.
        problem: &'static str,
    },
}

/// Checks a response against the service asked and returns the bytes after the SID.
///
/// # Errors
/// [`UdsError::Empty`], [`UdsError::Negative`] (named NRC; not for 0x78, which is
/// [`Outcome::Pending`]), [`UdsError::UnexpectedNegative`], [`UdsError::TooShort`] for a
/// negative response under 3 bytes, or [`UdsError::UnexpectedSid`].
pub(crate) fn positive_body(payload: &[u8], request_sid: u8) -> Result<Outcome<&[u8]>, UdsError> {
    let expected = request_sid.wrapping_add(POSITIVE_RESPONSE_OFFSET);
    match payload {
        [] => Err(UdsError::Empty),
        [NEGATIVE_RESPONSE_SID, service, nrc, ..] => {
            let nrc = Nrc(*nrc);
            if *service != request_sid {
                Err(UdsError::UnexpectedNegative {
                    expected: Service(request_sid),
                    got: Service(*service),
                    nrc,
                })
            } else if nrc == Nrc::RESPONSE_PENDING {
                Ok(Outcome::Pending)
            } else {
                Err(UdsError::Negative {
                    service: Service(*service),
                    nrc,
                })
            }
        }
        [NEGATIVE_RESPONSE_SID, ..] => Err(UdsError::TooShort {
            what: "negative response",
            len: payload.len(),
            needed: 3,
        }),
        [sid, body @ ..] if *sid == expected => Ok(Outcome::Positive(body)),
        [sid, ..] => Err(UdsError::UnexpectedSid {
            expected: Service(request_sid),
            got: *sid,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn udsoncan_tester_present_general_reject() {
        // python-udsoncan test_response.py (VECTORS §3): 7F 3E 10
        let err = positive_body(&[0x7F, 0x3E, 0x10], 0x3E).unwrap_err();
        assert_eq!(
            err,
            UdsError::Negative {
                service: Service(0x3E),
                nrc: Nrc(0x10)
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("TesterPresent") && text.contains("generalReject"),
            "{text}"
        );
    }

    #[test]
    fn all_required_nrcs_are_named() {
        for code in [
            0x10, 0x11, 0x12, 0x13, 0x14, 0x21, 0x22, 0x24, 0x31, 0x33, 0x35, 0x70, 0x72, 0x78,
            0x7E, 0x7F,
        ] {
            assert!(Nrc(code).name().is_some(), "NRC 0x{code:02X}");
        }
        assert_eq!(Nrc(0x31).name(), Some("requestOutOfRange"));
        assert_eq!(Nrc(0x22).to_string(), "conditionsNotCorrect (NRC 0x22)");
        assert_eq!(Nrc(0x99).to_string(), "NRC 0x99");
        assert_eq!(Service(0x99).to_string(), "0x99");
    }

    #[test]
    fn response_pending_is_an_outcome_not_an_error() {
        assert_eq!(
            positive_body(&[0x7F, 0x22, 0x78], 0x22),
            Ok(Outcome::Pending)
        );
        assert_eq!(
            positive_body(&[0x62, 0xF1, 0x90], 0x22),
            Ok(Outcome::Positive(&[0xF1, 0x90][..]))
        );
        // pending for another service is not ours to wait on
        assert!(matches!(
            positive_body(&[0x7F, 0x19, 0x78], 0x22),
            Err(UdsError::UnexpectedNegative { .. })
        ));
        assert_eq!(P2_STAR_DEFAULT, Duration::from_secs(5));
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(positive_body(&[], 0x22), Err(UdsError::Empty));
        assert!(matches!(
            positive_body(&[0x7F, 0x22], 0x22),
            Err(UdsError::TooShort { needed: 3, .. })
        ));
        let err = positive_body(&[0x6F, 0x02], 0x19).unwrap_err();
        assert_eq!(
            err,
            UdsError::UnexpectedSid {
                expected: Service(0x19),
                got: 0x6F
            }
        );
        assert!(err.to_string().contains("ReadDTCInformation"));
    }

    mod never_panics {
        use super::super::*;
        use proptest::prelude::*;

        fn table() -> DidTable {
            DidTable::new(vec![
                DidSpec::new(0x0001, 2, DidKind::UnsignedBe),
                DidSpec::new(0x0002, 3, DidKind::SignedLe),
                DidSpec::new(0x0003, 8, DidKind::SignedBe),
                DidSpec::new(0x0004, 5, DidKind::Ascii),
                DidSpec::new(0x0005, 1, DidKind::Raw),
            ])
            .unwrap()
        }

        fn payload() -> impl Strategy<Value = Vec<u8>> {
            crate::proto::sid_then(
                vec![0x62, 0x59, 0x7F, 0x00],
                prop::collection::vec(
                    prop_oneof![Just(0x00u8), Just(0x01), Just(0x02), any::<u8>()],
                    0..48,
                ),
            )
        }

        proptest! {
            #[test]
            fn decoders_take_any_bytes(bytes in payload(), raw in prop::collection::vec(any::<u8>(), 0..16)) {
                let table = table();
                for input in [&bytes[..], &raw[..]] {
                    if let Ok(Outcome::Positive(it)) = parse_read_data_by_identifier(input, &table) {
                        for record in it.flatten() {
                            let _ = (record.integer(), record.value());
                        }
                    }
                    if let Ok(Outcome::Positive(r)) = parse_report_dtc_by_status_mask(input) {
                        for d in r.records {
                            let _ = (d.dtc.to_string(), d.status.to_string());
                        }
                    }
                    if let Err(e) = positive_body(input, 0x22) {
                        let _ = e.to_string();
                    }
                }
            }
        }
    }
}
