//! Every default value of the agent config, and the limits its checks hold values to where a
//! limit is a number other modules build on, in one place: a section's serde defaults and its
//! `Default` impl read these, never a literal.
//!
//! Owns: the numbers. Does not own: what they mean to the module that uses them (each says so
//! in its own docs).

/// OBD-II mode 01 PIDs polled when `[obd]` names none: speed (0x0D), odometer (0xA6).
pub const OBD_PIDS: [u8; 2] = [0x0D, 0xA6];
/// OBD-II CAN identifier width.
pub const OBD_ID_BITS: u8 = 11;
/// UDS 0x19 0x02 status mask: testFailed, …ThisOperationCycle, pending, confirmed,
/// testFailedSinceLastClear, warningIndicatorRequested.
pub const UDS_DTC_STATUS_MASK: u8 = 0xAF;
/// J1939 address of the agent: 0xF9, the off-board diagnostic tool address (J1939-81).
pub const J1939_OWN_ADDRESS: u8 = 0xF9;
/// Poll interval with the ignition on.
pub const POLL_ON_MS: u64 = 1_000;
/// Poll interval in accessory.
pub const POLL_ACCESSORY_MS: u64 = 10_000;
/// Poll interval with the ignition off (a wake-up check; ECUs mostly sleep).
pub const POLL_OFF_MS: u64 = 300_000;
/// Least time between two requests on one bus.
pub const MIN_GAP_MS: u64 = 20;
/// P2: how long to wait for a first response.
pub const RESPONSE_TIMEOUT_MS: u64 = 100;
/// P2*: how long to wait after a 0x78 responsePending.
pub const P2_STAR_MS: u64 = 5_000;
/// Fastest plausible vehicle speed, for odometer jumps.
pub const MAX_PLAUSIBLE_KMH: u32 = 300;
/// Overdue margin past the due distance, km.
pub const OVERDUE_KM: u32 = 1_000;
/// Overdue margin past the due date, days.
pub const OVERDUE_DAYS: u32 = 30;
/// Overdue margin past the due engine hours.
pub const OVERDUE_ENGINE_HOURS: u32 = 50;
/// Due-soon window before due engine hours.
pub const DUE_SOON_ENGINE_HOURS: u32 = 50;
/// Break-in distance, km (a common figure in owner's manuals).
pub const BREAK_IN_KM: u32 = 1_500;
/// Break-in advice repeats after this many days.
pub const BREAK_IN_REPEAT_DAYS: u32 = 7;
/// Distance milestones, km.
pub const MILESTONES_KM: [u32; 6] = [10_000, 50_000, 100_000, 200_000, 300_000, 500_000];
/// Stopped: below this speed, km/h...
pub const STOPPED_KMH: f32 = 3.0;
/// ...for this long, seconds.
pub const STOPPED_FOR_S: u32 = 3;
/// Prompts of one kind per local day.
pub const DAILY_CAP: u32 = 2;
/// The agent's data directory.
pub const STORE_PATH: &str = "/var/lib/rapport-agent";
/// Persist the odometer after this many metres...
pub const ODOMETER_EVERY_M: u32 = 100;
/// ...or seconds.
pub const ODOMETER_EVERY_S: u32 = 60;
/// Write what changed at least this often, seconds (sled rewrites whole pages: each
/// write costs kilobytes on flash, so writes are coalesced; see `store_hour` bench).
pub const WRITE_EVERY_S: u32 = 30;
/// sled's page cache, KiB: what of the store sled keeps in memory (sled's own default is
/// 1 GiB). The agent's working set is its memory (loaded at open) and the outbox's tail: a
/// head unit's share of RAM is small, and a page not cached is read back from the file.
pub const STORE_CACHE_KB: u32 = 2_048;
/// The least and most `[store] cache_kb` may be (sled needs a few pages per shard).
pub const STORE_CACHE_KB_RANGE: core::ops::RangeInclusive<u32> = 256..=1_048_576;
/// Outbox bound, records: about 10 MB of sled on disk when full (measured: ~500 B per
/// record), some 100 days of typical driving without a connection.
pub const OUTBOX_MAX_RECORDS: u64 = 20_000;
/// An odometer record for the cloud every this many metres.
pub const OUTBOX_ODOMETER_EVERY_M: u32 = 1_000;
/// HMI port on loopback.
pub const HMI_PORT: u16 = 8686;
/// MQTT keep-alive, seconds: long enough to spare a metered link, short enough that a
/// dead link (a car driving out of coverage) is noticed within a minute and a half.
pub const SYNC_KEEP_ALIVE_S: u16 = 60;
/// Records per uplink: a 20,000-record outbox drains in 40 publishes.
pub const SYNC_BATCH_MAX_RECORDS: usize = 500;
/// Uplink payload bound, bytes: a quarter of the wire limit (`MAX_UPLINK_BYTES`), so
/// one publish stays small for a weak cellular link and a small broker limit.
pub const SYNC_BATCH_MAX_BYTES: usize = 64 * 1024;
/// A record waits at most this long for companions before a partial batch goes, ms.
pub const SYNC_BATCH_MAX_AGE_MS: u64 = 2_000;
/// Uplinks in flight (published, not yet acknowledged); far under rumqttc's own
/// window of 100, so its packet ids never collide (see `sync::inflight`).
pub const SYNC_INFLIGHT: usize = 10;
/// The most `[sync].inflight` may be: half the MQTT client's window of 100 unacknowledged
/// publishes (`sync::CLIENT_WINDOW`), so a packet id is never reused while the publish that had
/// it is unacknowledged (see `sync::inflight`; the sync checks this bound at compile time).
pub const SYNC_MAX_INFLIGHT: usize = 50;
/// Reconnect backoff floor, ms.
pub const SYNC_BACKOFF_MIN_MS: u64 = 1_000;
/// Reconnect backoff ceiling, ms: a fleet coming back after a broker outage spreads its
/// reconnects over up to two minutes.
pub const SYNC_BACKOFF_MAX_MS: u64 = 120_000;
/// A heartbeat record every hour.
pub const SYNC_HEARTBEAT_S: u64 = 3_600;
/// `[ignition].on_volts`: module voltage at or above which the engine runs (a charging
/// alternator; a resting 12 V battery is at most about 12.8 V).
pub const IGNITION_ON_VOLTS: f32 = 13.0;
/// `[ignition].off_after_silent`: unanswered accessory-cadence probes before "off".
pub const IGNITION_OFF_AFTER_SILENT: u32 = 3;
