//! UDS 0x22 ReadDataByIdentifier: request bytes, the configured DID table, and the walk over
//! `62 DID data [DID data …]` responses.
//!
//! A response does not say how long each DID's data is, so the table decides: a DID missing
//! from it stops the walk. Owns: [`DidSpec`] (serde, so a TOML config can name an OEM
//! odometer DID), scaling of numeric DIDs. Does not own: which DIDs a vehicle line uses
//! (config) or what the values mean downstream.

use serde::{Deserialize, Serialize};

use super::{Outcome, SID_READ_DATA_BY_IDENTIFIER, UdsError, positive_body};

/// Longest DID data a single UDS response can carry (ISO-TP 4095 bytes minus SID and DID).
const MAX_DID_LEN: usize = 4092;

/// How a DID's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DidKind {
    /// Unsigned integer, most significant byte first (1–8 bytes).
    UnsignedBe,
    /// Unsigned integer, least significant byte first (1–8 bytes).
    UnsignedLe,
    /// Two's-complement integer, most significant byte first (1–8 bytes).
    SignedBe,
    /// Two's-complement integer, least significant byte first (1–8 bytes).
    SignedLe,
    /// ASCII text; trailing NULs and spaces are trimmed.
    Ascii,
    /// Bytes as they are.
    Raw,
}

impl DidKind {
    fn is_numeric(self) -> bool {
        !matches!(self, Self::Ascii | Self::Raw)
    }
}

fn one() -> f64 {
    1.0
}

/// One configured DID: where it is, how long, how to read it. In TOML:
/// `{ did = 0xF40D, len = 3, kind = "unsigned_be", factor = 0.1, unit = "km" }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DidSpec {
    /// The data identifier.
    pub(crate) did: u16,
    /// A name for logs (e.g. `odometer`).
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Data length in bytes.
    pub(crate) len: usize,
    /// How to read the bytes.
    pub(crate) kind: DidKind,
    /// Numeric kinds: physical = raw × factor + offset.
    #[serde(default = "one")]
    pub(crate) factor: f64,
    /// Numeric kinds: added after the factor.
    #[serde(default)]
    pub(crate) offset: f64,
    /// Unit of the physical value, for display.
    #[serde(default)]
    pub(crate) unit: Option<String>,
}

impl DidSpec {
    /// A spec with factor 1, offset 0 and no name or unit.
    #[cfg(test)]
    pub(crate) fn new(did: u16, len: usize, kind: DidKind) -> Self {
        Self {
            did,
            name: None,
            len,
            kind,
            factor: 1.0,
            offset: 0.0,
            unit: None,
        }
    }

    /// Checks the spec on its own.
    ///
    /// # Errors
    /// [`UdsError::BadDidSpec`] for a zero or impossible length, a numeric DID over 8 bytes,
    /// or a factor or offset that is not finite.
    pub(crate) fn validate(&self) -> Result<(), UdsError> {
        let problem = if self.len == 0 {
            "length is 0"
        } else if self.len > MAX_DID_LEN {
            "length exceeds what one UDS response can carry"
        } else if self.kind.is_numeric() && self.len > 8 {
            "numeric kinds hold at most 8 bytes"
        } else if !self.factor.is_finite() || !self.offset.is_finite() {
            "factor and offset must be finite numbers"
        } else {
            return Ok(());
        };
        Err(UdsError::BadDidSpec {
            did: self.did,
            problem,
        })
    }
}

/// The DIDs a decoder knows, checked and sorted for lookup.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DidTable {
    specs: Vec<DidSpec>,
}

impl DidTable {
    /// Builds the table from config.
    ///
    /// # Errors
    /// Every problem found: each spec's [`DidSpec::validate`] error and
    /// [`UdsError::BadDidSpec`] for a DID listed twice.
    pub(crate) fn new(mut specs: Vec<DidSpec>) -> Result<Self, Vec<UdsError>> {
        let mut problems: Vec<UdsError> = specs.iter().filter_map(|s| s.validate().err()).collect();
        specs.sort_by_key(|s| s.did);
        for pair in specs.windows(2) {
            if let [a, b] = pair
                && a.did == b.did
            {
                problems.push(UdsError::BadDidSpec {
                    did: a.did,
                    problem: "listed more than once",
                });
            }
        }
        if problems.is_empty() {
            Ok(Self { specs })
        } else {
            Err(problems)
        }
    }

    /// The spec of `did`, if configured.
    pub(crate) fn get(&self, did: u16) -> Option<&DidSpec> {
        self.specs
            .binary_search_by_key(&did, |s| s.did)
            .ok()
            .and_then(|i| self.specs.get(i))
    }
}

/// Decodes a 0x22 response. The DIDs are walked lazily by the returned iterator, which
/// yields one error and stops at a DID missing from `table` or at truncated data.
///
/// # Errors
/// Anything [`super::positive_body`] rejects, or [`UdsError::TooShort`] for a positive
/// response without a whole DID.
pub(crate) fn parse_read_data_by_identifier<'a>(
    payload: &'a [u8],
    table: &'a DidTable,
) -> Result<Outcome<DidIter<'a>>, UdsError> {
    let body = match positive_body(payload, SID_READ_DATA_BY_IDENTIFIER)? {
        Outcome::Positive(body) => body,
        Outcome::Pending => return Ok(Outcome::Pending),
    };
    if body.len() < 2 {
        return Err(UdsError::TooShort {
            what: "ReadDataByIdentifier response",
            len: payload.len(),
            needed: 3,
        });
    }
    Ok(Outcome::Positive(DidIter {
        table,
        rest: body,
        offset: 1,
    }))
}

/// Walks the DIDs of a 0x22 response; see [`parse_read_data_by_identifier`].
#[derive(Debug, Clone)]
pub(crate) struct DidIter<'a> {
    table: &'a DidTable,
    rest: &'a [u8],
    offset: usize,
}

impl<'a> DidIter<'a> {
    fn fail(&mut self, err: UdsError) -> Option<Result<DidRecord<'a>, UdsError>> {
        self.rest = &[];
        Some(Err(err))
    }
}

impl<'a> Iterator for DidIter<'a> {
    type Item = Result<DidRecord<'a>, UdsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let did = match self.rest {
            [] => return None,
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            [hi] => {
                return self.fail(UdsError::TruncatedDid {
                    did: u16::from(*hi) << 8,
                    needed: 2,
                    available: 1,
                });
            }
        };
        let Some(spec) = self.table.get(did) else {
            let offset = self.offset;
            return self.fail(UdsError::UnknownDid { did, offset });
        };
        let after = self.rest.get(2..).unwrap_or_default();
        let Some((data, rest)) = after.split_at_checked(spec.len) else {
            return self.fail(UdsError::TruncatedDid {
                did,
                needed: spec.len,
                available: after.len(),
            });
        };
        if spec.kind == DidKind::Ascii && !data.is_ascii() {
            return self.fail(UdsError::NotAscii { did });
        }
        self.rest = rest;
        self.offset += 2 + spec.len;
        Some(Ok(DidRecord { spec, data }))
    }
}

/// One DID from a response, with its spec.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DidRecord<'a> {
    /// The configured spec.
    pub(crate) spec: &'a DidSpec,
    /// Its data bytes (exactly `spec.len`).
    pub(crate) data: &'a [u8],
}

/// A DID's value as its spec reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DidValue<'a> {
    /// Numeric kinds: raw × factor + offset.
    Number(f64),
    /// ASCII text, trailing NULs and spaces trimmed.
    Ascii(&'a str),
    /// Raw bytes.
    Raw(&'a [u8]),
}

impl<'a> DidRecord<'a> {
    /// The data identifier.
    pub(crate) fn did(&self) -> u16 {
        self.spec.did
    }

    /// The integer before factor and offset, for numeric kinds.
    pub(crate) fn integer(&self) -> Option<i128> {
        let mut buf = [0u8; 8];
        let len = self.data.len();
        if len == 0 || len > 8 || !self.spec.kind.is_numeric() {
            return None;
        }
        // Place the bytes most-significant first at the end of an 8-byte buffer.
        let dst = buf.get_mut(8 - len..)?;
        dst.copy_from_slice(self.data);
        if matches!(self.spec.kind, DidKind::UnsignedLe | DidKind::SignedLe) {
            dst.reverse();
        }
        let unsigned = u64::from_be_bytes(buf);
        Some(match self.spec.kind {
            DidKind::SignedBe | DidKind::SignedLe => {
                // Sign-extend from len × 8 bits.
                let shift = 64 - 8 * len as u32;
                i128::from(((unsigned << shift) as i64) >> shift)
            }
            _ => i128::from(unsigned),
        })
    }

    /// The value as the spec reads it.
    pub(crate) fn value(&self) -> DidValue<'a> {
        match self.spec.kind {
            DidKind::Ascii => {
                let end = self
                    .data
                    .iter()
                    .rposition(|b| *b != 0 && *b != b' ')
                    .map_or(0, |i| i + 1);
                let text = self.data.get(..end).unwrap_or_default();
                // Checked ASCII when the record was made.
                DidValue::Ascii(core::str::from_utf8(text).unwrap_or_default())
            }
            DidKind::Raw => DidValue::Raw(self.data),
            _ => match self.integer() {
                Some(raw) => DidValue::Number(raw as f64 * self.spec.factor + self.spec.offset),
                None => DidValue::Raw(self.data),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::proto::uds::{Nrc, Service};
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, StrDeserializer};

    fn walk<'a>(payload: &'a [u8], table: &'a DidTable) -> Vec<Result<DidRecord<'a>, UdsError>> {
        parse_read_data_by_identifier(payload, table)
            .unwrap()
            .positive()
            .unwrap()
            .collect()
    }

    #[test]
    fn udsoncan_single_did() {
        // python-udsoncan test_read_data_by_identifier.py (VECTORS §3):
        // 62 = positive 0x22, 00 01 = DID, 12 34 = '>H'
        let table = DidTable::new(vec![DidSpec::new(0x0001, 2, DidKind::UnsignedBe)]).unwrap();
        let records = walk(&[0x62, 0x00, 0x01, 0x12, 0x34], &table);
        let [Ok(r)] = records.as_slice() else {
            panic!("{records:?}");
        };
        assert_eq!(r.did(), 0x0001);
        assert_eq!(r.integer(), Some(0x1234));
        assert_eq!(r.value(), DidValue::Number(4660.0));
    }

    #[test]
    fn udsoncan_four_dids_walked_by_the_table() {
        // VECTORS §3: DID1 '>H' 0x1234; DID2 '<H' 0x7856; DID4 ASCII(5) 'abcde'; DID3 one byte
        // (udsoncan's stub codec replaces it by a constant; here it stays raw).
        let table = DidTable::new(vec![
            DidSpec::new(0x0001, 2, DidKind::UnsignedBe),
            DidSpec::new(0x0002, 2, DidKind::UnsignedLe),
            DidSpec::new(0x0003, 1, DidKind::Raw),
            DidSpec::new(0x0004, 5, DidKind::Ascii),
        ])
        .unwrap();
        let payload = [
            0x62, // positive 0x22
            0x00, 0x01, 0x12, 0x34, // DID 0x0001
            0x00, 0x02, 0x56, 0x78, // DID 0x0002
            0x00, 0x04, 0x61, 0x62, 0x63, 0x64, 0x65, // DID 0x0004 "abcde"
            0x00, 0x03, 0x11, // DID 0x0003
        ];
        let records: Vec<_> = walk(&payload, &table)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let got: Vec<_> = records.iter().map(|r| (r.did(), r.value())).collect();
        assert_eq!(
            got,
            vec![
                (0x0001, DidValue::Number(f64::from(0x1234))),
                (0x0002, DidValue::Number(f64::from(0x7856))),
                (0x0004, DidValue::Ascii("abcde")),
                (0x0003, DidValue::Raw(&[0x11])),
            ]
        );
    }

    #[test]
    fn unknown_did_stops_the_walk() {
        let table = DidTable::new(vec![DidSpec::new(0x0001, 2, DidKind::UnsignedBe)]).unwrap();
        let records = walk(&[0x62, 0x00, 0x01, 0x12, 0x34, 0xF1, 0x90, 0x41], &table);
        assert_eq!(records.len(), 2);
        let err = records[1].clone().unwrap_err();
        assert_eq!(
            err,
            UdsError::UnknownDid {
                did: 0xF190,
                offset: 5
            }
        );
        assert!(err.to_string().contains("0xF190"));
    }

    #[test]
    fn truncated_and_malformed() {
        let table = DidTable::new(vec![DidSpec::new(0x0001, 2, DidKind::UnsignedBe)]).unwrap();
        // data one byte short
        assert_eq!(
            walk(&[0x62, 0x00, 0x01, 0x12], &table),
            vec![Err(UdsError::TruncatedDid {
                did: 1,
                needed: 2,
                available: 1
            })]
        );
        // half a DID after a whole record
        let records = walk(&[0x62, 0x00, 0x01, 0x12, 0x34, 0x00], &table);
        assert!(matches!(
            records[1],
            Err(UdsError::TruncatedDid {
                needed: 2,
                available: 1,
                ..
            })
        ));
        // no DID at all
        assert!(matches!(
            parse_read_data_by_identifier(&[0x62, 0x00], &table),
            Err(UdsError::TooShort { .. })
        ));
        // wrong SID
        assert!(matches!(
            parse_read_data_by_identifier(&[0x59, 0x00, 0x01], &table),
            Err(UdsError::UnexpectedSid { got: 0x59, .. })
        ));
        // non-ASCII in an ASCII DID
        let ascii = DidTable::new(vec![DidSpec::new(0xF190, 2, DidKind::Ascii)]).unwrap();
        assert_eq!(
            walk(&[0x62, 0xF1, 0x90, 0x41, 0xC3], &ascii),
            vec![Err(UdsError::NotAscii { did: 0xF190 })]
        );
    }

    #[test]
    fn open3e_heating_controller_scan() {
        // AnHardt/open3e candump.log (VECTORS §3), payloads after ISO-TP:
        let table = DidTable::new(vec![
            DidSpec::new(0x0175, 2, DidKind::Raw),
            DidSpec::new(0x017D, 4, DidKind::Raw),
        ])
        .unwrap();
        // 62 01 75 00 00 → DID 0x0175 = 00 00
        let records = walk(&[0x62, 0x01, 0x75, 0x00, 0x00], &table);
        assert_eq!(
            records[0].as_ref().unwrap().value(),
            DidValue::Raw(&[0x00, 0x00])
        );
        // 62 01 7D 01 31 31 00 → DID 0x017D = 01 31 31 00
        let records = walk(&[0x62, 0x01, 0x7D, 0x01, 0x31, 0x31, 0x00], &table);
        assert_eq!(
            records[0].as_ref().unwrap().value(),
            DidValue::Raw(&[0x01, 0x31, 0x31, 0x00])
        );
        // 7F 22 31 → requestOutOfRange; 7F 22 22 → conditionsNotCorrect
        for (nrc, name) in [(0x31, "requestOutOfRange"), (0x22, "conditionsNotCorrect")] {
            let err = parse_read_data_by_identifier(&[0x7F, 0x22, nrc], &table).unwrap_err();
            assert_eq!(
                err,
                UdsError::Negative {
                    service: Service(0x22),
                    nrc: Nrc(nrc)
                }
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        // 7F 22 78 → keep waiting
        assert!(matches!(
            parse_read_data_by_identifier(&[0x7F, 0x22, 0x78], &table),
            Ok(Outcome::Pending)
        ));
    }

    #[test]
    fn scaled_and_signed_dids() {
        // an OEM odometer: 3 bytes big-endian, 0.1 km
        let mut odo = DidSpec::new(0xF40D, 3, DidKind::UnsignedBe);
        odo.factor = 0.1;
        odo.unit = Some("km".into());
        let mut temp = DidSpec::new(0x0100, 2, DidKind::SignedLe);
        temp.factor = 0.5;
        temp.offset = 10.0;
        let table =
            DidTable::new(vec![odo, temp, DidSpec::new(0x0101, 1, DidKind::SignedBe)]).unwrap();
        // F4 0D | 01 E2 40 = 123456 → 12345.6 km
        let r = walk(&[0x62, 0xF4, 0x0D, 0x01, 0xE2, 0x40], &table);
        let DidValue::Number(km) = r[0].as_ref().unwrap().value() else {
            panic!()
        };
        assert!((km - 12_345.6).abs() < 1e-6);
        // 01 00 | FE FF = −2 (LE) → −2 × 0.5 + 10 = 9
        let r = walk(&[0x62, 0x01, 0x00, 0xFE, 0xFF], &table);
        assert_eq!(r[0].as_ref().unwrap().integer(), Some(-2));
        assert_eq!(r[0].as_ref().unwrap().value(), DidValue::Number(9.0));
        // 01 01 | 80 = −128
        let r = walk(&[0x62, 0x01, 0x01, 0x80], &table);
        assert_eq!(r[0].as_ref().unwrap().integer(), Some(-128));
    }

    #[test]
    fn ascii_trims_padding() {
        let table = DidTable::new(vec![DidSpec::new(0xF190, 6, DidKind::Ascii)]).unwrap();
        let r = walk(
            &[0x62, 0xF1, 0x90, b'A', b'B', b' ', b'C', 0x00, b' '],
            &table,
        );
        assert_eq!(r[0].as_ref().unwrap().value(), DidValue::Ascii("AB C"));
    }

    #[test]
    fn table_reports_every_problem() {
        let mut nan = DidSpec::new(0x0003, 2, DidKind::UnsignedBe);
        nan.factor = f64::NAN;
        let problems = DidTable::new(vec![
            DidSpec::new(0x0001, 0, DidKind::Raw),
            DidSpec::new(0x0002, 9, DidKind::UnsignedBe),
            nan,
            DidSpec::new(0x0004, 2, DidKind::Raw),
            DidSpec::new(0x0004, 3, DidKind::Raw),
        ])
        .unwrap_err();
        let dids: Vec<u16> = problems
            .iter()
            .map(|p| match p {
                UdsError::BadDidSpec { did, .. } => *did,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(dids, [1, 2, 3, 4]);
    }

    #[test]
    fn kinds_deserialize_from_config_names() {
        for (name, kind) in [
            ("unsigned_be", DidKind::UnsignedBe),
            ("unsigned_le", DidKind::UnsignedLe),
            ("signed_be", DidKind::SignedBe),
            ("signed_le", DidKind::SignedLe),
            ("ascii", DidKind::Ascii),
            ("raw", DidKind::Raw),
        ] {
            let de: StrDeserializer<'_, DeError> = name.into_deserializer();
            assert_eq!(DidKind::deserialize(de), Ok(kind));
        }
        let de: StrDeserializer<'_, DeError> = "float".into_deserializer();
        assert!(DidKind::deserialize(de).is_err());
    }

    /// The whole open3e scan (SOURCES.md: traces/open3e/candump.log): every single-frame
    /// answer on 0x690, with the DID taken from the 0x680 request before it.
    #[test]
    fn open3e_trace_single_frame_answers() {
        let Some(path) = rapport_harness::files::shared_data_file("traces/open3e/candump.log")
        else {
            return;
        };
        let text = std::fs::read_to_string(path).unwrap();
        let mut requested = None;
        let (mut positive, mut conditions, mut out_of_range) = (0, 0, 0);
        for line in text.lines() {
            // `  can0  690   [8]  03 62 01 75 ...`
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, id, _, data @ ..] = fields.as_slice() else {
                continue;
            };
            let bytes: Vec<u8> = data
                .iter()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
            let Some((&pci, rest)) = bytes.split_first() else {
                continue;
            };
            if pci >> 4 != 0 {
                continue; // ISO-TP first frames: not this module's concern
            }
            let payload = &rest[..usize::from(pci)];
            match *id {
                "680" => requested = Some(u16::from_be_bytes([payload[1], payload[2]])),
                "690" => {
                    let did = requested.take().unwrap();
                    let len = payload.len().saturating_sub(3).max(1);
                    let table = DidTable::new(vec![DidSpec::new(did, len, DidKind::Raw)]).unwrap();
                    match parse_read_data_by_identifier(payload, &table) {
                        Ok(Outcome::Positive(it)) => {
                            let records: Vec<_> = it.collect::<Result<_, _>>().unwrap();
                            assert_eq!(records.len(), 1);
                            assert_eq!(records[0].did(), did);
                            positive += 1;
                        }
                        Err(UdsError::Negative { nrc: Nrc(0x22), .. }) => conditions += 1,
                        Err(UdsError::Negative { nrc: Nrc(0x31), .. }) => out_of_range += 1,
                        other => panic!("DID 0x{did:04X}: {other:?}"),
                    }
                }
                _ => {}
            }
        }
        assert_eq!((positive, conditions, out_of_range), (196, 1916, 902));
    }

    /// A config value as a TOML table would hand it to serde (toml is not a dependency here).
    #[derive(Clone, Copy)]
    enum V {
        U(u64),
        F(f64),
        S(&'static str),
    }

    struct VDe(V);

    impl<'de> serde::Deserializer<'de> for VDe {
        type Error = DeError;

        fn deserialize_any<W: serde::de::Visitor<'de>>(self, v: W) -> Result<W::Value, DeError> {
            match self.0 {
                V::U(n) => v.visit_u64(n),
                V::F(f) => v.visit_f64(f),
                V::S(s) => v.visit_borrowed_str(s),
            }
        }

        fn deserialize_option<W: serde::de::Visitor<'de>>(self, v: W) -> Result<W::Value, DeError> {
            v.visit_some(self)
        }

        fn deserialize_enum<W: serde::de::Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            v: W,
        ) -> Result<W::Value, DeError> {
            match self.0 {
                V::S(s) => {
                    let de: StrDeserializer<'_, DeError> = s.into_deserializer();
                    serde::Deserializer::deserialize_enum(de, name, variants, v)
                }
                _ => self.deserialize_any(v),
            }
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf unit unit_struct newtype_struct seq tuple tuple_struct map struct
            identifier ignored_any
        }
    }

    impl<'de> IntoDeserializer<'de, DeError> for V {
        type Deserializer = VDe;
        fn into_deserializer(self) -> VDe {
            VDe(self)
        }
    }

    fn spec_from(fields: &[(&'static str, V)]) -> Result<DidSpec, DeError> {
        DidSpec::deserialize(serde::de::value::MapDeserializer::new(
            fields.iter().copied(),
        ))
    }

    #[test]
    fn spec_deserializes_like_the_toml_config() {
        // did = 0xF40D, len = 3, kind = "unsigned_be", factor = 0.1, unit = "km"
        let spec = spec_from(&[
            ("did", V::U(0xF40D)),
            ("len", V::U(3)),
            ("kind", V::S("unsigned_be")),
            ("factor", V::F(0.1)),
            ("unit", V::S("km")),
        ])
        .unwrap();
        let mut want = DidSpec::new(0xF40D, 3, DidKind::UnsignedBe);
        want.factor = 0.1;
        want.unit = Some("km".into());
        assert_eq!(spec, want);
        // factor defaults to 1, offset to 0
        let spec = spec_from(&[("did", V::U(1)), ("len", V::U(2)), ("kind", V::S("raw"))]).unwrap();
        assert_eq!(spec, DidSpec::new(1, 2, DidKind::Raw));
        // a DID over 16 bits, a typo'd field, a missing kind: all refused
        assert!(
            spec_from(&[
                ("did", V::U(0x1_0000)),
                ("len", V::U(2)),
                ("kind", V::S("raw"))
            ])
            .is_err()
        );
        assert!(
            spec_from(&[("did", V::U(1)), ("length", V::U(2)), ("kind", V::S("raw"))]).is_err()
        );
        assert!(spec_from(&[("did", V::U(1)), ("len", V::U(2))]).is_err());
    }
}
