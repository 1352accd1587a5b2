//! What a [`super::PassiveDecoder`] reads on one bus: its settings, built from the config by
//! `crate::settings::observer`. Owns the shape only.

use crate::config::{DbcRole, DidRole};
use crate::proto::dbc::DecodePlan;
use crate::proto::uds::DidSpec;

/// What the decoder reads: the protocols a config sets up on one bus (built from the config by
/// `crate::settings::observer`).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// OBD-II answers, with CAN ids of this many bits (11 or 29); `None`: no OBD-II.
    pub(crate) obd_id_bits: Option<u8>,
    /// The UDS ECUs on this bus (none: no UDS).
    pub(crate) uds: Vec<UdsSettings>,
    /// J1939; `None`: no J1939.
    pub(crate) j1939: Option<J1939Settings>,
    /// DBC broadcast signals; `None`: none.
    pub(crate) dbc: Option<DbcSettings>,
}

/// The UDS ECU the decoder listens to.
#[derive(Debug, Clone)]
pub(crate) struct UdsSettings {
    /// Requests to it (its answers are paired with them).
    pub(crate) request_id: u32,
    /// Its answers.
    pub(crate) response_id: u32,
    /// ISO 15765-2 extended addressing: (its address, ours); `None`: normal addressing.
    pub(crate) address: Option<(u8, u8)>,
    /// Each DID it is asked, and what its value is to rapport (none: decoded for logs only).
    /// An odometer DID whose unit is `"m"` is in metres, else in km.
    pub(crate) dids: Vec<(DidSpec, Option<DidRole>)>,
}

/// J1939 reading.
#[derive(Debug, Clone, Default)]
pub(crate) struct J1939Settings {
    /// Source addresses whose distance, hours and speed groups are used; `None`: every source.
    /// DM1 faults are read from every source whatever this says.
    pub(crate) signal_sources: Option<Vec<u8>>,
}

/// The DBC signals read off the bus.
#[derive(Debug, Clone)]
pub(crate) struct DbcSettings {
    /// The compiled signals; signal `i` is `roles[i]`.
    pub(crate) plan: DecodePlan,
    /// What each compiled signal is for.
    pub(crate) roles: Vec<DbcRole>,
    /// The park signal's values meaning "parked": `VAL_` labels (`"P"`) or raw integers as
    /// text (`"0"`).
    pub(crate) parked_values: Vec<String>,
}
