//! Kernel receive filters derived from what a config needs, so a saturated bus's other traffic
//! never reaches user space. Pure (the SocketCAN shell installs them); tested everywhere.

use crate::config::Loaded;

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

    /// Whether a frame id passes this filter.
    pub fn matches(&self, id: u32, extended: bool) -> bool {
        extended == self.extended && id & self.mask == self.id & self.mask
    }
}

/// J1939 parameter groups the agent reads: DM1, VD, VDHR, HOURS, CCVS1 (PDU2: the PGN sits in
/// id bits 8–25) and the transport protocol's TP.CM / TP.DT (PDU1: only PF matters).
const J1939_PDU2_PGNS: [u32; 5] = [0xFECA, 0xFEE0, 0xFEC1, 0xFEE5, 0xFEF1];
const J1939_TP_PFS: [u32; 2] = [0xEC, 0xEB];

/// The filters a config needs: OBD-II answers (0x7E8–0x7EF or 0x18DAF1xx), the UDS answer id,
/// the J1939 groups above, and every message the DBC plan decodes. An empty list means the
/// config reads nothing from this bus — install no filter then (a socket with none gets all).
pub fn for_config(loaded: &Loaded) -> Vec<KernelFilter> {
    let cfg = &loaded.config;
    let mut f = Vec::new();
    if let Some(o) = &cfg.obd {
        f.push(if o.id_bits == 29 {
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
    if let Some(u) = &cfg.uds {
        f.push(KernelFilter::exact(u.response_id, u.is_extended()));
    }
    if cfg.j1939.is_some() {
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
    if let Some(d) = &loaded.dbc {
        for (id, extended) in d.plan.can_ids() {
            f.push(KernelFilter::exact(id, extended));
        }
    }
    f.dedup();
    f
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    fn load(name: &str) -> Loaded {
        crate::config::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config")
                .join(name),
        )
        .unwrap()
    }

    fn passes(f: &[KernelFilter], id: u32, ext: bool) -> bool {
        f.iter().any(|k| k.matches(id, ext))
    }

    #[test]
    fn passenger_filters_pass_what_it_reads_and_nothing_else() {
        let f = for_config(&load("passenger.toml"));
        for (id, ext) in [
            (0x7E8, false),
            (0x7EF, false),
            (0x77E, false),
            (0x500, false),
        ] {
            assert!(passes(&f, id, ext), "0x{id:X} must pass");
        }
        for (id, ext) in [
            (0x7DF, false),
            (0x7E0, false),
            (0x123, false),
            (0x501, false),
            (0x7E8, true),
        ] {
            assert!(!passes(&f, id, ext), "0x{id:X} must not pass");
        }
    }

    #[test]
    fn commercial_filters_pass_j1939_groups_from_any_source_and_priority() {
        let f = for_config(&load("commercial.toml"));
        // From the real truck trace: DM1 and TP at priority 7, VD, VDHR from SA 0x31, CCVS1.
        for id in [
            0x18FE_CA00,
            0x1CEC_FF00,
            0x1CEB_FF31,
            0x18FE_E000,
            0x18FE_C131,
            0x18FE_F100,
            0x18FE_E500,
        ] {
            assert!(passes(&f, id, true), "0x{id:X} must pass");
        }
        // EEC1 (engine speed) and a standard id are not read.
        assert!(!passes(&f, 0x0CF0_0400, true));
        assert!(!passes(&f, 0x18FE_CA00 & 0x7FF, false));
    }
}
