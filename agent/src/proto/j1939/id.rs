//! J1939 29-bit identifiers: splitting one into priority, PGN, source and destination, and
//! building one back. Owns the PDU1/PDU2 rule; knows nothing of transport or payloads.

use super::J1939Error;

/// Destination address meaning "every node" (and the implied destination of PDU2 PGNs).
pub const GLOBAL: u8 = 0xFF;

/// The first PDU format of PDU2: below it the PS byte is a destination address, from it on
/// the PS byte is a group extension and part of the PGN.
const PDU2_FIRST_PF: u8 = 240;

/// A J1939 identifier taken apart (J1939-21 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct J1939Id {
    priority: u8,
    edp: bool,
    dp: bool,
    pf: u8,
    ps: u8,
    source: u8,
}

impl J1939Id {
    /// Splits a raw 29-bit id.
    ///
    /// # Errors
    /// [`J1939Error::BadId`] if bits above 29 are set.
    pub fn from_raw(raw: u32) -> Result<Self, J1939Error> {
        if raw > 0x1FFF_FFFF {
            return Err(J1939Error::BadId { id: raw });
        }
        let [b3, pf, ps, source] = raw.to_be_bytes();
        let (edp, dp) = (b3 & 0x02 != 0, b3 & 0x01 != 0);
        Ok(Self::from_fields(b3 >> 2, edp, dp, pf, ps, source))
    }

    /// An id from its raw fields (priority, EDP, DP, PF, PS, SA). `priority` keeps its low
    /// 3 bits.
    pub(crate) fn from_fields(
        priority: u8,
        edp: bool,
        dp: bool,
        pf: u8,
        ps: u8,
        source: u8,
    ) -> Self {
        Self {
            priority: priority & 0x07,
            edp,
            dp,
            pf,
            ps,
            source,
        }
    }

    /// An id carrying `pgn` from `source` to `destination` ([`GLOBAL`] for broadcast).
    ///
    /// # Errors
    /// [`J1939Error::BadPgn`] if the PGN is wider than 18 bits or is PDU1 with a non-zero low
    /// byte; [`J1939Error::Pdu2Destination`] if a PDU2 PGN is given a specific destination
    /// (its id has no room for one); [`J1939Error::BadPriority`] above 7.
    pub(crate) fn new(
        priority: u8,
        pgn: u32,
        destination: u8,
        source: u8,
    ) -> Result<Self, J1939Error> {
        if priority > 7 {
            return Err(J1939Error::BadPriority { priority });
        }
        if pgn > 0x3_FFFF {
            return Err(J1939Error::BadPgn { pgn });
        }
        let [_, edp_dp, pf, low] = pgn.to_be_bytes();
        let ps = if pf < PDU2_FIRST_PF {
            if low != 0 {
                return Err(J1939Error::BadPgn { pgn });
            }
            destination
        } else {
            if destination != GLOBAL {
                return Err(J1939Error::Pdu2Destination { pgn, destination });
            }
            low
        };
        Ok(Self::from_fields(
            priority,
            edp_dp & 2 != 0,
            edp_dp & 1 != 0,
            pf,
            ps,
            source,
        ))
    }

    /// The raw 29-bit id.
    pub(crate) fn raw(&self) -> u32 {
        let b3 = (self.priority << 2) | (u8::from(self.edp) << 1) | u8::from(self.dp);
        u32::from_be_bytes([b3, self.pf, self.ps, self.source])
    }

    /// Priority, 0 (highest) to 7.
    #[cfg(test)]
    pub(crate) fn priority(&self) -> u8 {
        self.priority
    }

    /// PDU format byte.
    #[cfg(test)]
    pub(crate) fn pf(&self) -> u8 {
        self.pf
    }

    /// PDU specific byte: a destination address (PDU1) or group extension (PDU2).
    #[cfg(test)]
    pub(crate) fn ps(&self) -> u8 {
        self.ps
    }

    /// Source address.
    pub(crate) fn source(&self) -> u8 {
        self.source
    }

    /// Whether the PS byte is a destination address (PF < 240).
    pub(crate) fn is_pdu1(&self) -> bool {
        self.pf < PDU2_FIRST_PF
    }

    /// The parameter group number: EDP, DP, PF and, for PDU2 only, PS.
    pub fn pgn(&self) -> u32 {
        let ps = if self.is_pdu1() { 0 } else { self.ps };
        u32::from_be_bytes([
            0,
            (u8::from(self.edp) << 1) | u8::from(self.dp),
            self.pf,
            ps,
        ])
    }

    /// Where the message goes: the PS byte for PDU1, [`GLOBAL`] for PDU2.
    pub(crate) fn destination(&self) -> u8 {
        if self.is_pdu1() { self.ps } else { GLOBAL }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // VECTORS.md §4f (cantools tests/test_database.py @ c1dcd396): (prio, R=EDP, DP, PF, PS, SA).
    #[test]
    fn cantools_id_packing() {
        let id = J1939Id::from_fields(7, true, true, 0xFF, 0xFF, 0xFF);
        assert_eq!(id.raw(), 0x1FFF_FFFF);
        let id = J1939Id::from_fields(5, false, false, 0x12, 0x34, 0x56);
        assert_eq!(id.raw(), 0x1412_3456);
        let back = J1939Id::from_raw(0x1412_3456).unwrap();
        assert_eq!(back, id);
        assert_eq!(
            (back.priority(), back.pf(), back.ps(), back.source()),
            (5, 0x12, 0x34, 0x56)
        );
    }

    // VECTORS.md §4f: PGN from (R, DP, PF, PS).
    #[test]
    fn cantools_pgns() {
        assert_eq!(
            J1939Id::from_fields(0, true, true, 0xFF, 0xFF, 0).pgn(),
            0x3_FFFF
        );
        // PF 0xEF is PDU1: the PS byte (here 0x00) is a destination, not part of the PGN.
        assert_eq!(
            J1939Id::from_fields(0, false, true, 0xEF, 0x00, 0).pgn(),
            0x1_EF00
        );
        assert_eq!(
            J1939Id::from_fields(0, false, false, 0xF0, 0x34, 0).pgn(),
            0xF034
        );
    }

    #[test]
    fn pdu1_and_pdu2_split() {
        // DM1 from SA 0x31 (PDU2): broadcast, PS is the group extension.
        let id = J1939Id::from_raw(0x18FE_CA31).unwrap();
        assert_eq!(
            (id.priority(), id.pgn(), id.source(), id.destination()),
            (6, 65226, 0x31, GLOBAL)
        );
        assert!(!id.is_pdu1());
        // TP.CM from SA 0xF9 to 0x00 (PDU1).
        let id = J1939Id::from_raw(0x18EC_00F9).unwrap();
        assert_eq!(
            (id.pgn(), id.source(), id.destination()),
            (0xEC00, 0xF9, 0x00)
        );
        assert!(id.is_pdu1());
        assert_eq!(
            J1939Id::from_raw(0x2000_0000),
            Err(J1939Error::BadId { id: 0x2000_0000 })
        );
    }

    #[test]
    fn building_ids() {
        assert_eq!(
            J1939Id::new(6, 0xEC00, 0xFF, 0x00).unwrap().raw(),
            0x18EC_FF00
        );
        assert_eq!(
            J1939Id::new(7, 0xEB00, 0xFF, 0x90).unwrap().raw(),
            0x1CEB_FF90
        );
        assert_eq!(
            J1939Id::new(6, 65226, GLOBAL, 0x00).unwrap().raw(),
            0x18FE_CA00
        );
        assert_eq!(
            J1939Id::new(6, 65226, 0x17, 0x00),
            Err(J1939Error::Pdu2Destination {
                pgn: 65226,
                destination: 0x17
            })
        );
        assert_eq!(
            J1939Id::new(6, 0xEC01, 0x17, 0),
            Err(J1939Error::BadPgn { pgn: 0xEC01 })
        );
        assert_eq!(
            J1939Id::new(6, 0x4_0000, 0xFF, 0),
            Err(J1939Error::BadPgn { pgn: 0x4_0000 })
        );
        assert_eq!(
            J1939Id::new(8, 0xEC00, 0xFF, 0),
            Err(J1939Error::BadPriority { priority: 8 })
        );
    }
}
