//! [`Config::validate`]'s checks: every value problem, each with the key path a fleet engineer
//! would look for (`uds.dids[1].len`). Owns no parsing (serde does that) and no DBC checks
//! (those need the file; see [`super::load`]).

use core::fmt;

use crate::can::candump::Interface;
use crate::proto::obd::pid_data_len;
use crate::proto::uds::DidKind;

use super::{Config, DidRole};

/// One problem with a config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `uds.dids[1].len`.
    pub path: String,
    /// What is wrong, e.g. `must be 1..=8 for unsigned_be`.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Longest DID data one UDS response can carry (4095 bytes of ISO-TP less SID and DID).
const MAX_DID_LEN: usize = 4092;

fn kind_name(kind: DidKind) -> &'static str {
    match kind {
        DidKind::UnsignedBe => "unsigned_be",
        DidKind::UnsignedLe => "unsigned_le",
        DidKind::SignedBe => "signed_be",
        DidKind::SignedLe => "signed_le",
        DidKind::Ascii => "ascii",
        DidKind::Raw => "raw",
    }
}

fn is_numeric(kind: DidKind) -> bool {
    !matches!(kind, DidKind::Ascii | DidKind::Raw)
}

pub(super) fn validate(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut bad = |path: String, message: String| problems.push(Problem::new(path, message));

    if config.vehicle.line.trim().is_empty() {
        bad("vehicle.line".into(), "must not be empty".into());
    }

    let buses = &config.can.buses;
    for (i, bus) in buses.iter().enumerate() {
        if bus.name.trim().is_empty() {
            bad(format!("can.buses[{i}].name"), "must not be empty".into());
        }
        if buses.iter().take(i).any(|b| b.name == bus.name) {
            bad(
                format!("can.buses[{i}].name"),
                format!("{:?} is used by an earlier bus", bus.name),
            );
        }
        if Interface::new(&bus.interface).is_none() {
            bad(
                format!("can.buses[{i}].interface"),
                format!(
                    "{:?} is not 1-15 printable ASCII characters without spaces",
                    bus.interface
                ),
            );
        }
    }
    let mut bus_ref = |section: &str, name: &str| {
        if !buses.iter().any(|b| b.name == name) {
            let known: Vec<&str> = buses.iter().map(|b| b.name.as_str()).collect();
            bad(
                format!("{section}.bus"),
                format!("no [[can.buses]] is named {name:?} (known: {known:?})"),
            );
        }
    };
    if let Some(obd) = &config.obd {
        bus_ref("obd", &obd.bus);
    }
    if let Some(uds) = &config.uds {
        bus_ref("uds", &uds.bus);
    }
    if let Some(j) = &config.j1939 {
        bus_ref("j1939", &j.bus);
    }
    if let Some(dbc) = &config.dbc {
        bus_ref("dbc", &dbc.bus);
    }

    if let Some(obd) = &config.obd {
        if obd.id_bits != 11 && obd.id_bits != 29 {
            bad(
                "obd.id_bits".into(),
                format!("must be 11 or 29, not {}", obd.id_bits),
            );
        }
        for (i, pid) in obd.pids.iter().enumerate() {
            if pid_data_len(*pid).is_none() {
                bad(
                    format!("obd.pids[{i}]"),
                    format!(
                        "mode 01 PID 0x{pid:02X} has no known length, so its answer cannot be decoded"
                    ),
                );
            }
            if obd.pids.iter().take(i).any(|p| p == pid) {
                bad(
                    format!("obd.pids[{i}]"),
                    format!("PID 0x{pid:02X} is listed twice"),
                );
            }
        }
    }

    if let Some(uds) = &config.uds {
        let max = if uds.is_extended() {
            0x1FFF_FFFF
        } else {
            0x7FF
        };
        for (key, id) in [
            ("request_id", uds.request_id),
            ("response_id", uds.response_id),
        ] {
            if id > max {
                bad(
                    format!("uds.{key}"),
                    format!(
                        "0x{id:X} does not fit a {}-bit CAN id",
                        if max == 0x7FF { 11 } else { 29 }
                    ),
                );
            }
        }
        if uds.request_id == uds.response_id {
            bad(
                "uds.response_id".into(),
                "must differ from uds.request_id".into(),
            );
        }
        let mut roles: Vec<DidRole> = Vec::new();
        for (i, d) in uds.dids.iter().enumerate() {
            let path = |field: &str| format!("uds.dids[{i}].{field}");
            let kind = kind_name(d.kind);
            if is_numeric(d.kind) && !(1..=8).contains(&d.len) {
                bad(path("len"), format!("must be 1..=8 for {kind}"));
            } else if !(1..=MAX_DID_LEN).contains(&d.len) {
                bad(path("len"), format!("must be 1..={MAX_DID_LEN} for {kind}"));
            }
            if !d.factor.is_finite() {
                bad(path("factor"), "must be a finite number".into());
            }
            if !d.offset.is_finite() {
                bad(path("offset"), "must be a finite number".into());
            }
            if uds.dids.iter().take(i).any(|o| o.did == d.did) {
                bad(path("did"), format!("DID 0x{:04X} is listed twice", d.did));
            }
            if let Some(role) = d.role {
                if !is_numeric(d.kind) {
                    bad(
                        path("role"),
                        format!("{role:?} needs a numeric kind, not {kind}"),
                    );
                }
                if roles.contains(&role) {
                    bad(
                        path("role"),
                        format!("another DID already has role {role:?}"),
                    );
                }
                roles.push(role);
                if role == DidRole::Odometer
                    && !matches!(d.unit.as_deref(), None | Some("km") | Some("m"))
                {
                    bad(path("unit"), "an odometer DID is in \"km\" or \"m\"".into());
                }
            }
        }
    }

    if let Some(j) = &config.j1939 {
        if j.own_address > 0xFD {
            bad(
                "j1939.own_address".into(),
                format!(
                    "0x{:02X} is reserved (0xFE null, 0xFF global); use 0x00-0xFD",
                    j.own_address
                ),
            );
        }
        for (i, sa) in j.signal_sources.iter().flatten().enumerate() {
            if *sa > 0xFD {
                bad(
                    format!("j1939.signal_sources[{i}]"),
                    format!("0x{sa:02X} is not a source address (0x00-0xFD)"),
                );
            }
        }
    }

    if let Some(park) = config.dbc.as_ref().and_then(|d| d.park.as_ref())
        && park.parked_values.is_empty()
    {
        {
            bad(
                "dbc.park.parked_values".into(),
                "must list at least one value".into(),
            );
        }
    }

    let p = &config.poller;
    for (key, ms) in [
        ("on_ms", p.on_ms),
        ("accessory_ms", p.accessory_ms),
        ("off_ms", p.off_ms),
        ("response_timeout_ms", p.response_timeout_ms),
        ("p2_star_ms", p.p2_star_ms),
    ] {
        if ms == 0 {
            bad(format!("poller.{key}"), "must be more than 0".into());
        }
    }
    if p.p2_star_ms < p.response_timeout_ms {
        bad(
            "poller.p2_star_ms".into(),
            "must be at least poller.response_timeout_ms (P2* extends P2)".into(),
        );
    }
    if p.min_gap_ms >= p.on_ms {
        bad(
            "poller.min_gap_ms".into(),
            "must be less than poller.on_ms".into(),
        );
    }

    if !(1..=1000).contains(&config.observe.max_plausible_kmh) {
        bad(
            "observe.max_plausible_kmh".into(),
            format!("must be 1..=1000, not {}", config.observe.max_plausible_kmh),
        );
    }

    let overrides = &config.dtc.overrides;
    for (i, o) in overrides.iter().enumerate() {
        if overrides.iter().take(i).any(|e| e.code == o.code) {
            bad(
                format!("dtc.overrides[{i}].code"),
                format!("{} is listed twice", o.code),
            );
        }
    }
    problems.extend(crate::rules::maintenance::validate_items(
        &config.maintenance.items,
        "maintenance.items",
    ));
    problems.extend(judgement(config));
    if let Some(sync) = &config.sync {
        problems.extend(sync_section(sync));
    }
    problems
}

/// `[sync]`: each bound says why it is there.
fn sync_section(s: &super::Sync) -> Vec<Problem> {
    use rapport_shared::{MAX_RECORDS, MAX_UPLINK_BYTES};
    let mut problems = Vec::new();
    let mut bad = |path: &str, message: String| problems.push(Problem::new(path, message));
    if let Some(id) = &s.client_id {
        // MQTT 3.1.1 guarantees 1-23 characters; brokers accept more, but not empty (the
        // session is persistent) nor anything that does not survive a topic or a log line.
        if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) {
            bad(
                "sync.client_id",
                format!("{id:?} must be 1-128 printable ASCII characters without spaces"),
            );
        }
    }
    if s.keep_alive_s < 5 {
        bad(
            "sync.keep_alive_s",
            format!("must be 5..=65535 s, not {}", s.keep_alive_s),
        );
    }
    if !(1..=MAX_RECORDS).contains(&s.batch_max_records) {
        bad(
            "sync.batch_max_records",
            format!(
                "must be 1..={MAX_RECORDS} (the wire limit), not {}",
                s.batch_max_records
            ),
        );
    }
    if !(1024..=MAX_UPLINK_BYTES).contains(&s.batch_max_bytes) {
        bad(
            "sync.batch_max_bytes",
            format!(
                "must be 1024..={MAX_UPLINK_BYTES} bytes (the wire limit), not {}",
                s.batch_max_bytes
            ),
        );
    }
    if s.batch_max_age_ms > 600_000 {
        bad(
            "sync.batch_max_age_ms",
            format!("must be at most 600000 ms, not {}", s.batch_max_age_ms),
        );
    }
    if !(1..=crate::sync::MAX_INFLIGHT).contains(&s.inflight) {
        bad(
            "sync.inflight",
            format!(
                "must be 1..={} (under the MQTT client's own window), not {}",
                crate::sync::MAX_INFLIGHT,
                s.inflight
            ),
        );
    }
    if s.backoff_min_ms == 0 {
        bad("sync.backoff_min_ms", "must be at least 1 ms".into());
    }
    if s.backoff_max_ms < s.backoff_min_ms {
        bad(
            "sync.backoff_max_ms",
            "must be at least sync.backoff_min_ms".into(),
        );
    }
    if s.backoff_max_ms > 3_600_000 {
        bad(
            "sync.backoff_max_ms",
            format!(
                "must be at most 3600000 ms (an hour), not {}",
                s.backoff_max_ms
            ),
        );
    }
    if !(1..=86_400).contains(&s.heartbeat_s) {
        bad(
            "sync.heartbeat_s",
            format!("must be 1..=86400 s, not {}", s.heartbeat_s),
        );
    }
    match &s.tls {
        None if s.broker.tls => bad(
            "sync.tls.ca",
            "an mqtts broker needs [sync.tls] with the CA that signed its certificate".into(),
        ),
        None => {}
        Some(tls) => {
            if tls.ca.as_os_str().is_empty() {
                bad("sync.tls.ca", "must not be empty".into());
            }
            match (&tls.cert, &tls.key) {
                (Some(_), None) => bad("sync.tls.key", "a client certificate needs its key".into()),
                (None, Some(_)) => {
                    bad("sync.tls.cert", "a client key needs its certificate".into())
                }
                _ => {}
            }
        }
    }
    problems
}

/// `[prompts]`, `[store]`, `[outbox]`: the sections of the agent's judgement and memory.
fn judgement(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut bad = |path: &str, message: String| problems.push(Problem::new(path, message));
    let p = &config.prompts;
    if !(p.stopped_kmh.is_finite() && (0.0..=20.0).contains(&p.stopped_kmh)) {
        bad(
            "prompts.stopped_kmh",
            format!("must be 0 to 20 km/h, not {}", p.stopped_kmh),
        );
    }
    if p.stopped_for_s > 600 {
        bad(
            "prompts.stopped_for_s",
            format!("must be at most 600 s, not {}", p.stopped_for_s),
        );
    }
    if !(-720..=840).contains(&p.utc_offset_minutes) {
        bad(
            "prompts.utc_offset_minutes",
            format!(
                "must be -720..=840 (UTC-12 to UTC+14), not {}",
                p.utc_offset_minutes
            ),
        );
    }
    if p.break_in_repeat_days == 0 {
        bad("prompts.break_in_repeat_days", "must be at least 1".into());
    }
    for (i, m) in p.milestones_km.iter().enumerate() {
        if *m == 0 || p.milestones_km.iter().take(i).any(|e| e == m) {
            bad(
                &format!("prompts.milestones_km[{i}]"),
                format!("{m} is zero or listed twice"),
            );
        }
    }
    for kind in p.daily_caps.keys() {
        if kind != "other"
            && kind
                .parse::<rapport_shared::v1::uplink::PromptKind>()
                .is_err()
        {
            let known: Vec<&str> = rapport_shared::v1::uplink::PromptKind::ALL
                .iter()
                .map(|k| k.name())
                .collect();
            bad(
                &format!("prompts.daily_caps.{kind}"),
                format!("not a prompt kind (one of {})", known.join(", ")),
            );
        }
    }
    if let Some(q) = &p.quiet_hours
        && let Err(e) = crate::gate::parse_quiet_hours(q)
    {
        bad("prompts.quiet_hours", e.to_string());
    }
    let st = &config.store;
    if st.path.as_os_str().is_empty() {
        bad("store.path", "must not be empty".into());
    }
    if st.odometer_every_m == 0 {
        bad("store.odometer_every_m", "must be at least 1".into());
    }
    if st.odometer_every_s == 0 {
        bad("store.odometer_every_s", "must be at least 1".into());
    }
    if !(1..=600).contains(&st.write_every_s) {
        bad(
            "store.write_every_s",
            format!("must be 1..=600 s, not {}", st.write_every_s),
        );
    }
    if config.outbox.max_records < 100 {
        bad(
            "outbox.max_records",
            format!("must be at least 100, not {}", config.outbox.max_records),
        );
    }
    if config.outbox.odometer_every_m == 0 {
        bad("outbox.odometer_every_m", "must be at least 1".into());
    }
    problems
}
