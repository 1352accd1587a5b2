//! Kernel receive filters derived from what the agent reads off a bus ([`Reads`]), so a
//! saturated bus's other traffic never reaches user space. Pure (the SocketCAN shell installs
//! them); tested everywhere.
//!
//! Owns: which ids and masks pass for each protocol. Does not own: which protocols a config
//! sets up (`crate::settings::kernel_filters` builds the [`Reads`] from it).

/// A receive filter: a frame passes when `frame_id & mask == id & mask` (and its id length
/// matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelFilter {
    /// The id to match (11 or 29 bits).
    pub id: u32,
    /// Which bits of the id must match.
    pub mask: u32,
    /// Whether this filter is for 29-bit ids.
    pub extended: bool,
}

impl KernelFilter {
    /// Exactly one id.
    pub fn exact(id: u32, extended: bool) -> Self {
        let mask = if extended { 0x1FFF_FFFF } else { 0x7FF };
        Self { id, mask, extended }
    }

    /// Whether a frame id passes this filter (as the kernel decides; the head unit's test checks
    /// the kernel's counts against it).
    pub fn matches(&self, id: u32, extended: bool) -> bool {
        extended == self.extended && id & self.mask == self.id & self.mask
    }
}

/// J1939 parameter groups the agent reads: DM1, DM2, VD, VDHR, HOURS, CCVS1 (PDU2: the PGN sits in
/// id bits 8–25) and the transport protocol's TP.CM / TP.DT (PDU1: only PF matters).
const J1939_PDU2_PGNS: [u32; 6] = [0xFECA, 0xFECB, 0xFEE0, 0xFEC1, 0xFEE5, 0xFEF1];
const J1939_TP_PFS: [u32; 2] = [0xEC, 0xEB];

/// What the agent reads off one bus, as far as the filters care.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reads {
    /// OBD-II answers; `Some(true)`: with 29-bit ids.
    pub(crate) obd_extended: Option<bool>,
    /// Each UDS ECU's answer id on this bus, and whether it is 29-bit.
    pub(crate) uds_responses: Vec<(u32, bool)>,
    /// J1939 parameter groups.
    pub(crate) j1939: bool,
    /// Every message the DBC plan decodes: id and whether it is 29-bit.
    pub(crate) dbc_ids: Vec<(u32, bool)>,
}

/// The filters for `reads`: OBD-II answers (0x7E8–0x7EF or 0x18DAF1xx), the UDS answer ids,
/// the J1939 groups above, and every message the DBC plan decodes. An empty list means
/// nothing is read from this bus — install no filter then (a socket with none gets all).
pub(crate) fn kernel_filters(reads: &Reads) -> Vec<KernelFilter> {
    let mut f = Vec::new();
    if let Some(extended) = reads.obd_extended {
        f.push(if extended {
            KernelFilter {
                id: 0x18DA_F100,
                mask: 0x1FFF_FF00,
                extended: true,
            }
        } else {
            KernelFilter {
                id: 0x7E8,
                mask: 0x7F8,
                extended: false,
            }
        });
    }
    for &(id, extended) in &reads.uds_responses {
        f.push(KernelFilter::exact(id, extended));
    }
    if reads.j1939 {
        for pgn in J1939_PDU2_PGNS {
            f.push(KernelFilter {
                id: pgn << 8,
                mask: 0x03FF_FF00,
                extended: true,
            });
        }
        for pf in J1939_TP_PFS {
            f.push(KernelFilter {
                id: pf << 16,
                mask: 0x03FF_0000,
                extended: true,
            });
        }
    }
    for &(id, extended) in &reads.dbc_ids {
        f.push(KernelFilter::exact(id, extended));
    }
    f.dedup();
    f
}
