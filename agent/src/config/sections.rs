//! The config sections of the agent's judgement and memory: `[maintenance]`, `[prompts]`,
//! `[store]`, `[outbox]`, `[hmi]`, and the link to the cloud, `[sync]`. Defaults live in
//! [`super::defaults`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use rapport_shared::v1::downlink::MaintenanceItem;
use serde::{Deserialize, Serialize};

use super::defaults;

/// `[maintenance]`: the vehicle line's schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Maintenance {
    /// `[[maintenance.items]]`: due by distance, time or engine hours, whichever first.
    pub items: Vec<MaintenanceItem>,
    /// An item is overdue this many km past its due distance.
    pub overdue_km: u32,
    /// An item is overdue this many days past its due date.
    pub overdue_days: u32,
    /// An item is overdue this many engine hours past its due hours.
    pub overdue_engine_hours: u32,
    /// "Due soon" starts this many engine hours before due (items due by hours).
    pub due_soon_engine_hours: u32,
}

impl Default for Maintenance {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            overdue_km: defaults::OVERDUE_KM,
            overdue_days: defaults::OVERDUE_DAYS,
            overdue_engine_hours: defaults::OVERDUE_ENGINE_HOURS,
            due_soon_engine_hours: defaults::DUE_SOON_ENGINE_HOURS,
        }
    }
}

/// `[prompts]`: what to tell the driver, and when it is safe and welcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prompts {
    /// Break-in distance, km (0: no break-in prompts).
    pub break_in_km: u32,
    /// Break-in advice shows again after this many days while under the distance.
    pub break_in_repeat_days: u32,
    /// Distance milestones, km.
    pub milestones_km: Vec<u32>,
    /// Below this speed, km/h, the car counts as stopped...
    pub stopped_kmh: f32,
    /// ...once it has stayed below it this long, seconds.
    pub stopped_for_s: u32,
    /// The head unit's offset from UTC, minutes, for quiet hours and days.
    pub utc_offset_minutes: i32,
    /// Most prompts of one kind shown per local day, by kind name; kinds not named get
    /// [`defaults::DAILY_CAP`]. Critical prompts are never capped.
    pub daily_caps: BTreeMap<String, u32>,
    /// Quiet hours until the driver sets their own (`{ start = "22:00", end = "07:00" }`).
    pub quiet_hours: Option<crate::memory::QuietHours>,
}

impl Default for Prompts {
    fn default() -> Self {
        Self {
            break_in_km: defaults::BREAK_IN_KM,
            break_in_repeat_days: defaults::BREAK_IN_REPEAT_DAYS,
            milestones_km: defaults::MILESTONES_KM.to_vec(),
            stopped_kmh: defaults::STOPPED_KMH,
            stopped_for_s: defaults::STOPPED_FOR_S,
            utc_offset_minutes: 0,
            daily_caps: BTreeMap::new(),
            quiet_hours: None,
        }
    }
}

/// `[store]`: where and how often the agent writes its memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// The data directory (sled files); relative paths resolve against the config's folder.
    pub path: PathBuf,
    /// Persist the odometer when it moved this many metres since the last write...
    pub odometer_every_m: u32,
    /// ...or this many seconds passed, whichever first.
    pub odometer_every_s: u32,
    /// Write what changed — one atomic batch, fsynced — at least this often, seconds; a
    /// driver's action or a service is written at once. What a power loss can lose: the
    /// last `write_every_s` of odometer progress and readings (the car's own odometer is
    /// read again at the next start), never an action the driver saw confirmed.
    pub write_every_s: u32,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            path: PathBuf::from(defaults::STORE_PATH),
            odometer_every_m: defaults::ODOMETER_EVERY_M,
            odometer_every_s: defaults::ODOMETER_EVERY_S,
            write_every_s: defaults::WRITE_EVERY_S,
        }
    }
}

/// `[outbox]`: what waits for the cloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outbox {
    /// Most records kept; when full, the least valuable go first.
    pub max_records: u64,
    /// An odometer record every this many metres driven (and at each stop).
    pub odometer_every_m: u32,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            max_records: defaults::OUTBOX_MAX_RECORDS,
            odometer_every_m: defaults::OUTBOX_ODOMETER_EVERY_M,
        }
    }
}

/// `[hmi]`: the head unit's screen talks to the agent over HTTP on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hmi {
    /// Listen address (port 0: any free port, logged at start).
    pub listen: SocketAddr,
}

impl Default for Hmi {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], defaults::HMI_PORT)),
        }
    }
}

/// `[sync]`: the MQTT link to the cloud. Absent: the agent keeps its outbox and never sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sync {
    /// `"mqtt://host:1883"` or `"mqtts://host:8883"` (the port defaults to 1883 and 8883).
    pub broker: BrokerUrl,
    /// The MQTT client id (the broker keeps the persistent session under it); default: the VIN.
    #[serde(default)]
    pub client_id: Option<String>,
    /// MQTT keep-alive, seconds: a dead link is noticed within about 1.5 times this.
    #[serde(default = "keep_alive_s")]
    pub keep_alive_s: u16,
    /// Most records in one uplink.
    #[serde(default = "batch_max_records")]
    pub batch_max_records: usize,
    /// Largest uplink payload, bytes (at most the wire limit).
    #[serde(default = "batch_max_bytes")]
    pub batch_max_bytes: usize,
    /// A record waits at most this long for a batch to fill, ms.
    #[serde(default = "batch_max_age_ms")]
    pub batch_max_age_ms: u64,
    /// Uplinks published and not yet acknowledged, at most.
    #[serde(default = "inflight")]
    pub inflight: usize,
    /// Shortest wait before reconnecting, ms.
    #[serde(default = "backoff_min_ms")]
    pub backoff_min_ms: u64,
    /// Longest wait before reconnecting, ms.
    #[serde(default = "backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// A heartbeat record every this many seconds.
    #[serde(default = "heartbeat_s")]
    pub heartbeat_s: u64,
    /// `[sync.tls]`: TLS material; present (or an `mqtts` broker): the link uses TLS.
    #[serde(default)]
    pub tls: Option<SyncTls>,
}

fn keep_alive_s() -> u16 {
    defaults::SYNC_KEEP_ALIVE_S
}
fn batch_max_records() -> usize {
    defaults::SYNC_BATCH_MAX_RECORDS
}
fn batch_max_bytes() -> usize {
    defaults::SYNC_BATCH_MAX_BYTES
}
fn batch_max_age_ms() -> u64 {
    defaults::SYNC_BATCH_MAX_AGE_MS
}
fn inflight() -> usize {
    defaults::SYNC_INFLIGHT
}
fn backoff_min_ms() -> u64 {
    defaults::SYNC_BACKOFF_MIN_MS
}
fn backoff_max_ms() -> u64 {
    defaults::SYNC_BACKOFF_MAX_MS
}
fn heartbeat_s() -> u64 {
    defaults::SYNC_HEARTBEAT_S
}

impl Sync {
    /// A section for `broker` with every other value at its default.
    pub fn new(broker: BrokerUrl) -> Self {
        Self {
            broker,
            client_id: None,
            keep_alive_s: keep_alive_s(),
            batch_max_records: batch_max_records(),
            batch_max_bytes: batch_max_bytes(),
            batch_max_age_ms: batch_max_age_ms(),
            inflight: inflight(),
            backoff_min_ms: backoff_min_ms(),
            backoff_max_ms: backoff_max_ms(),
            heartbeat_s: heartbeat_s(),
            tls: None,
        }
    }

    /// Whether the link uses TLS: an `mqtts` broker or a `[sync.tls]` section.
    pub fn uses_tls(&self) -> bool {
        self.broker.tls || self.tls.is_some()
    }
}

/// `[sync.tls]`: PEM files, relative to the config file's folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTls {
    /// The CA certificate(s) the broker's certificate must chain to (the agent trusts no
    /// other root: a car's link to its fleet's broker is pinned to the fleet's CA).
    pub ca: PathBuf,
    /// The agent's client certificate chain (mTLS); with `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1 PEM); with `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

/// An MQTT broker address: `mqtt://host[:port]` or `mqtts://host[:port]`. Exists only valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BrokerUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `mqtts`: TLS.
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (IPv6 hosts in brackets).
    ///
    /// # Errors
    /// A message saying what is wrong with the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!("{text:?} is not a broker URL mqtt://host:port or mqtts://host:port: {why}")
        };
        let (tls, rest) = if let Some(rest) = text.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(bad("the scheme must be mqtt or mqtts"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) || rest.chars().any(char::is_whitespace) {
            return Err(bad("only a host and a port are allowed"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad("not an IPv6 address in brackets"));
            }
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?),
                ),
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match port {
            None => {
                if tls {
                    8883
                } else {
                    1883
                }
            }
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad("the port must be 1-65535")),
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl core::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl TryFrom<String> for BrokerUrl {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<BrokerUrl> for String {
    fn from(url: BrokerUrl) -> String {
        url.to_string()
    }
}
