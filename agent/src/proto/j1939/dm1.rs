//! DM1 (PGN 65226, active diagnostic trouble codes) and DM2 (PGN 65227, previously active
//! ones, sent when requested; same layout): lamp status and the DTC list, from a single frame
//! or a reassembled BAM or RTS/CTS payload. Owns the DTC bit layouts; does not own the
//! transport (see [`super::tp`]) nor SPN/FMI names.

use super::J1939Error;

/// PGN of DM1, active diagnostic trouble codes.
pub(crate) const PGN_DM1: u32 = 65226;

/// PGN of DM2, previously active diagnostic trouble codes (SAE J1939-73 5.7.2): sent only in
/// answer to a request (PGN 59904), in DM1's layout.
pub(crate) const PGN_DM2: u32 = 65227;

/// A lamp's on/off state (2 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LampStatus {
    /// `00`
    Off,
    /// `01`
    On,
    /// `10`: the sender reports an error.
    Error,
    /// `11`: the sender does not support this lamp.
    NotAvailable,
}

/// A lamp's flash state (2 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Flash {
    /// `00`: slow flash (1 Hz).
    Slow,
    /// `01`: fast flash (2 Hz or faster).
    Fast,
    /// `10`: reserved.
    Reserved,
    /// `11`: not flashing, or unavailable.
    Off,
}

/// One lamp: status plus flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lamp {
    /// On, off, error or not available.
    pub(crate) status: LampStatus,
    /// Flash state.
    pub(crate) flash: Flash,
}

/// The four DM1 lamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Lamps {
    /// Malfunction indicator lamp (emissions).
    pub(crate) mil: Lamp,
    /// Red stop lamp.
    pub(crate) rsl: Lamp,
    /// Amber warning lamp.
    pub(crate) awl: Lamp,
    /// Protect lamp.
    pub(crate) pl: Lamp,
}

impl Lamps {
    /// From the status byte and the flash byte (each: MIL bits 8–7, RSL 6–5, AWL 4–3, PL 2–1).
    pub(crate) fn from_bytes(status: u8, flash: u8) -> Self {
        let lamp = |shift: u8| Lamp {
            status: match (status >> shift) & 3 {
                0 => LampStatus::Off,
                1 => LampStatus::On,
                2 => LampStatus::Error,
                _ => LampStatus::NotAvailable,
            },
            flash: match (flash >> shift) & 3 {
                0 => Flash::Slow,
                1 => Flash::Fast,
                2 => Flash::Reserved,
                _ => Flash::Off,
            },
        };
        Self {
            mil: lamp(6),
            rsl: lamp(4),
            awl: lamp(2),
            pl: lamp(0),
        }
    }
}

/// How the SPN bits of a DTC are laid out (the CM bit, byte 4 bit 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SpnConversion {
    /// CM = 0: J1939-73 version 4 (current): SPN bits 0–7 in byte 1, 8–15 in byte 2,
    /// 16–18 in the top 3 bits of byte 3.
    Version4,
    /// CM = 1: one of the older J1939-73 layouts (versions 1–3), decoded as version 1.
    ///
    /// The DTC does not say which of versions 1–3 its sender used. We decode version 1, "SPN
    /// in the older order": the 19 bits most significant first — bits 18–11 in byte 1, 10–3
    /// in byte 2, 2–0 in the top 3 bits of byte 3. Version 1 is chosen because it is the one
    /// old layout that is unambiguous to describe and the one legacy tools default to; the
    /// raw bytes are kept in [`Dtc::raw`] so a caller who knows better can re-read them (e.g.
    /// with [`Dtc::from_bytes_version4`], which is what some ECUs that set CM by mistake need).
    Legacy,
}

/// One diagnostic trouble code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dtc {
    /// Suspect parameter number (19 bits).
    pub spn: u32,
    /// Failure mode identifier (5 bits).
    pub fmi: u8,
    /// Occurrence count (7 bits); `None` when the sender says "not available" (0x7F).
    pub(crate) occurrences: Option<u8>,
    /// Which layout the SPN was read with.
    pub(crate) conversion: SpnConversion,
    /// The four bytes as received.
    pub(crate) raw: [u8; 4],
}

impl Dtc {
    /// Decodes 4 DTC bytes, honouring the CM bit (see [`SpnConversion`]).
    pub(crate) fn from_bytes(raw: [u8; 4]) -> Self {
        if raw[3] & 0x80 == 0 {
            Self::from_bytes_version4(raw)
        } else {
            let [b0, b1, b2, _] = raw;
            let spn = (u32::from(b0) << 11) | (u32::from(b1) << 3) | u32::from(b2 >> 5);
            Self {
                spn,
                conversion: SpnConversion::Legacy,
                ..Self::from_bytes_version4(raw)
            }
        }
    }

    /// Decodes 4 DTC bytes with the version-4 SPN layout whatever the CM bit says
    /// (`conversion` is still reported from the CM bit).
    pub(crate) fn from_bytes_version4(raw: [u8; 4]) -> Self {
        let [b0, b1, b2, b3] = raw;
        let spn = u32::from(b0) | (u32::from(b1) << 8) | (u32::from(b2 >> 5) << 16);
        let oc = b3 & 0x7F;
        Self {
            spn,
            fmi: b2 & 0x1F,
            occurrences: (oc != 0x7F).then_some(oc),
            conversion: if b3 & 0x80 == 0 {
                SpnConversion::Version4
            } else {
                SpnConversion::Legacy
            },
            raw,
        }
    }
}

/// A decoded DM1 borrowing its payload: lamps now, DTCs on iteration (no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dm1<'a> {
    /// The lamp states.
    pub(crate) lamps: Lamps,
    dtc_bytes: &'a [u8],
}

impl<'a> Dm1<'a> {
    /// Decodes a DM1 payload (8 bytes single-frame, or a reassembled BAM payload).
    ///
    /// # Errors
    /// [`J1939Error::Short`] below the 2 lamp bytes.
    pub fn parse(data: &'a [u8]) -> Result<Self, J1939Error> {
        let [status, flash, rest @ ..] = data else {
            return Err(J1939Error::Short {
                pgn: PGN_DM1,
                len: data.len(),
                need: 2,
            });
        };
        Ok(Self {
            lamps: Lamps::from_bytes(*status, *flash),
            dtc_bytes: rest,
        })
    }

    /// The DTCs. The all-zero entry means "no DTC" and all-0xFF is padding: both are left
    /// out, as is a trailing partial entry (the `FF FF` after one DTC in a single frame).
    pub fn dtcs(&self) -> impl Iterator<Item = Dtc> + 'a {
        self.dtc_bytes
            .chunks_exact(4)
            .filter_map(|c| <[u8; 4]>::try_from(c).ok())
            .filter(|c| *c != [0; 4] && *c != [0xFF; 4])
            .map(Dtc::from_bytes)
    }
}

#[cfg(test)]
pub(super) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn lamp(status: LampStatus, flash: Flash) -> Lamp {
        Lamp { status, flash }
    }

    fn spn_fmi_oc(d: &Dtc) -> (u32, u8, Option<u8>) {
        (d.spn, d.fmi, d.occurrences)
    }

    /// The (SPN, FMI, OC) of every DTC of a DM1 payload, which must parse.
    pub(in crate::proto::j1939) fn dtcs_of(data: &[u8]) -> Vec<(u32, u8, Option<u8>)> {
        Dm1::parse(data)
            .unwrap()
            .dtcs()
            .map(|d| spn_fmi_oc(&d))
            .collect()
    }

    /// VECTORS.md §4b: the DTCs of the 18-byte DM1 that pretty_j1939 sends over BAM.
    pub(in crate::proto::j1939) const PRETTY_BAM_DM1_DTCS: [(u32, u8, Option<u8>); 4] = [
        (91, 3, Some(1)),
        (92, 4, Some(2)),
        (93, 5, Some(3)),
        (94, 6, Some(4)),
    ];

    // VECTORS.md §4a (j1939-84 DM1ActiveDTCsPacketTest): 18FECA00, 14 bytes.
    #[test]
    fn j1939_84_dm1_lamps_and_three_dtcs() {
        let data = [
            0x11, 0xCD, // lamps: RSL, PL on; flash: RSL slow, PL fast, others off
            0x61, 0x02, 0x13, 0x00, // SPN 609, FMI 19, OC 0
            0x21, 0x06, 0x1F, 0x00, // SPN 1569, FMI 31, OC 0
            0xEE, 0x10, 0x04, 0x00, // SPN 4334, FMI 4, OC 0
        ];
        let dm1 = Dm1::parse(&data).unwrap();
        assert_eq!(dm1.lamps.mil, lamp(LampStatus::Off, Flash::Off));
        assert_eq!(dm1.lamps.rsl, lamp(LampStatus::On, Flash::Slow));
        assert_eq!(dm1.lamps.awl, lamp(LampStatus::Off, Flash::Off));
        assert_eq!(dm1.lamps.pl, lamp(LampStatus::On, Flash::Fast));
        let dtcs: Vec<_> = dm1.dtcs().map(|d| spn_fmi_oc(&d)).collect();
        assert_eq!(
            dtcs,
            [(609, 19, Some(0)), (1569, 31, Some(0)), (4334, 4, Some(0))]
        );
    }

    // VECTORS.md §4a (j1939-84 DiagnosticTroubleCodeTest).
    #[test]
    fn j1939_84_dtc_fields() {
        let d = Dtc::from_bytes([0xEE, 0x10, 0x04, 0x00]);
        assert_eq!(
            (spn_fmi_oc(&d), d.conversion),
            ((4334, 4, Some(0)), SpnConversion::Version4)
        );
        // CM = 1: j1939-84 reads the SPN with the version-4 layout anyway; we flag it Legacy
        // and decode version 1 by default, and give the version-4 reading on request.
        let d = Dtc::from_bytes_version4([0x61, 0x02, 0x13, 0x81]);
        assert_eq!(
            (spn_fmi_oc(&d), d.conversion),
            ((609, 19, Some(1)), SpnConversion::Legacy)
        );
        let d = Dtc::from_bytes([0xFF, 0xFF, 0xE0, 0x00]);
        assert_eq!(spn_fmi_oc(&d), (524_287, 0, Some(0))); // max 19-bit SPN
        assert_eq!(Dtc::from_bytes([0, 0, 0x1F, 0]).fmi, 31);
        assert_eq!(
            Dtc::from_bytes([0, 0, 0, 0x80]).conversion,
            SpnConversion::Legacy
        );
        assert_eq!(Dtc::from_bytes([0, 0, 0, 0x7F]).occurrences, None); // 127 = not available
        assert_eq!(
            Dtc::from_bytes([0x21, 0x06, 0x1F, 0x23]).occurrences,
            Some(35)
        );
    }

    #[test]
    fn legacy_version1_bit_order() {
        // SPN 609 (0x261) written most significant first:
        // bits 18–11 = 0x00, bits 10–3 = 0x4C, bits 2–0 = 0b001 → byte 3 = 001_10011 (FMI 19).
        let d = Dtc::from_bytes([0x00, 0x4C, 0x33, 0x81]);
        assert_eq!(
            (d.spn, d.fmi, d.conversion),
            (609, 19, SpnConversion::Legacy)
        );
        // The same bytes as j1939-84's CM=1 row read as version 1.
        assert_eq!(
            Dtc::from_bytes([0x61, 0x02, 0x13, 0x81]).spn,
            (0x61 << 11) | (0x02 << 3)
        );
    }

    // VECTORS.md §4b (pretty_j1939 test_diagnostic_messages): 18FECA00#40FF5B000301FFFF.
    #[test]
    fn pretty_j1939_single_frame_dm1() {
        let dm1 = Dm1::parse(&[0x40, 0xFF, 0x5B, 0x00, 0x03, 0x01, 0xFF, 0xFF]).unwrap();
        assert_eq!(dm1.lamps.mil.status, LampStatus::On);
        let dtcs: Vec<_> = dm1.dtcs().map(|d| spn_fmi_oc(&d)).collect();
        assert_eq!(dtcs, [(91, 3, Some(1))]);
    }

    // SAE J1939-73 5.7.2: DM2 (PGN 65227 = 0xFECB, the PGN after DM1's 0xFECA) has DM1's
    // layout. A hand-made answer: lamps off, flash n/a, SPN 110 FMI 0 OC 2, SPN 190 FMI 4 OC 5.
    #[test]
    fn dm2_has_the_dm1_layout() {
        assert_eq!((PGN_DM1, PGN_DM2), (0xFECA, 0xFECB));
        let dm2 = [0x00, 0xFF, 0x6E, 0x00, 0x00, 0x02, 0xBE, 0x00, 0x04, 0x05];
        let parsed = Dm1::parse(&dm2).unwrap();
        assert_eq!(parsed.lamps.mil.status, LampStatus::Off);
        let dtcs: Vec<_> = parsed.dtcs().map(|d| spn_fmi_oc(&d)).collect();
        assert_eq!(dtcs, [(110, 0, Some(2)), (190, 4, Some(5))]);
    }

    // VECTORS.md §4b: the 18-byte DM1 over BAM, payload as reassembled.
    #[test]
    fn pretty_j1939_bam_dm1_payload() {
        let data = [
            0x00, 0xFF, // lamps off
            0x5B, 0x00, 0x03, 0x01, // SPN 91 FMI 3 OC 1
            0x5C, 0x00, 0x04, 0x02, // SPN 92 FMI 4 OC 2
            0x5D, 0x00, 0x05, 0x03, // SPN 93 FMI 5 OC 3
            0x5E, 0x00, 0x06, 0x04, // SPN 94 FMI 6 OC 4
        ];
        assert_eq!(dtcs_of(&data), PRETTY_BAM_DM1_DTCS);
    }

    // VECTORS.md §4d (normal.log 18FECA31) and §4e (j1939-84 issue #468).
    #[test]
    fn real_truck_single_frames() {
        let dm1 = Dm1::parse(&[0x00, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF]).unwrap();
        assert_eq!(dm1.lamps.mil, lamp(LampStatus::Off, Flash::Off));
        assert_eq!(dm1.dtcs().count(), 0, "the all-zero entry means no DTC");

        let dm1 = Dm1::parse(&[0x07, 0xFF, 0x6F, 0x00, 0x12, 0x01, 0xFF, 0xFF]).unwrap();
        assert_eq!(
            [
                dm1.lamps.mil.status,
                dm1.lamps.rsl.status,
                dm1.lamps.awl.status,
                dm1.lamps.pl.status
            ],
            [
                LampStatus::Off,
                LampStatus::Off,
                LampStatus::On,
                LampStatus::NotAvailable
            ]
        );
        assert_eq!(
            dm1.dtcs().map(|d| spn_fmi_oc(&d)).collect::<Vec<_>>(),
            [(111, 18, Some(1))]
        );

        let dm1 = Dm1::parse(&[0xC3, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF]).unwrap();
        assert_eq!(dm1.lamps.mil.status, LampStatus::NotAvailable);
        assert_eq!(dm1.lamps.pl.status, LampStatus::NotAvailable);
        assert_eq!(dm1.dtcs().count(), 0);

        let data = [
            0x00, 0xFF, 0xBA, 0xF2, 0xED, 0x01, 0xBC, 0xF2, 0xED, 0x01, 0xD5, 0xF2, 0xED, 0x01,
        ];
        assert_eq!(
            dtcs_of(&data),
            [
                (520_890, 13, Some(1)),
                (520_892, 13, Some(1)),
                (520_917, 13, Some(1))
            ]
        );
    }

    #[test]
    fn short_payloads() {
        assert_eq!(
            Dm1::parse(&[0x40]),
            Err(J1939Error::Short {
                pgn: PGN_DM1,
                len: 1,
                need: 2
            })
        );
        let dm1 = Dm1::parse(&[0x40, 0xFF, 0x5B]).unwrap();
        assert_eq!(dm1.dtcs().count(), 0, "a partial entry is not a DTC");
    }
}
