//! The one place that turns a loaded config into each module's own settings: the poller's
//! ([`pollers`], one per bus), the observer's and its passive decoder's ([`observer`]), the kernel CAN
//! filters ([`kernel_filters`]), the rules' ([`rules`]), the store's ([`store`]), the sync's
//! with its TLS files read ([`sync`]), and the HMI's addresses ([`hmi_listen`],
//! [`hmi_address`]). Each module defines and takes only its own settings, never the config;
//! the wiring (`crate::runtime`, `crate::desk`, `crate::replay`) calls in here.
//!
//! Owns: the mapping from config values to settings (units, derived values such as 29-bit ids,
//! which PGNs are requested), and reading the files a section names that the config itself
//! does not read (the sync's TLS files), so [`load`] — what `check-config` and every
//! subcommand use — lists their problems with the config's. Does not own: the config's shape,
//! defaults and checks ([`crate::config`]), nor what a module does with its settings.
//!
//! A value has one home: its default in `config::defaults`, its field in its config section,
//! its converted form in the module's settings, built here once.

use core::time::Duration;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use rapport_kit::config::{ConfigError, Problem, Problems, key};

use crate::can::filters::{self, KernelFilter};
use crate::config::{self, Config, Loaded};
use crate::observe::{self, passive};
use crate::poller::{self, J1939Target, ObdTarget, PGN_ENGINE_HOURS, UdsTarget};
use crate::proto::j1939::dm1::PGN_DM2;
use crate::proto::obd::DtcMode;
use crate::store::StoreOptions;
use crate::sync::tls::{self, TlsFiles};
use crate::sync::{self, SyncError, batch};

/// The key path of `[sync.tls]`.
const SYNC_TLS: &str = "sync.tls";

/// The index in `[[can.buses]]` of the bus named `name` (0 when none is: the config's checks
/// refuse that, and a config without buses reads one unnamed bus).
pub(crate) fn bus_index(config: &Config, name: &str) -> usize {
    config
        .can
        .buses
        .iter()
        .position(|b| b.name == name)
        .unwrap_or(0)
}

/// How many buses the agent reads: one per `[[can.buses]]` entry, at least one.
pub(crate) fn bus_count(config: &Config) -> usize {
    config.can.buses.len().max(1)
}

/// Which bus a frame of a trace belongs to, by its interface name (a candump line's interface
/// column): the `[[can.buses]]` entry with that `interface`. With one bus (or none) every frame
/// is the first bus's, whatever the trace calls it, as a single-bus trace recorded on `vcan0`
/// for a `can0` config always read. Frames from an interface no bus names are counted and
/// ignored, with one warning per such name.
#[derive(Debug, Clone)]
pub(crate) struct BusRoutes {
    interfaces: Vec<String>,
    /// Interfaces met that no bus names (bounded: their frames are counted all the same).
    unknown: Vec<String>,
    /// Frames from those.
    pub(crate) unrouted: u64,
}

/// What [`BusRoutes::route`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// The frame is this bus's.
    Bus(usize),
    /// No bus: ignore the frame; `Some(warning)` the first time this interface is met.
    Ignore(Option<String>),
}

/// Most unknown interface names remembered (each is warned about once).
const MAX_UNKNOWN_INTERFACES: usize = 16;

impl BusRoutes {
    /// The routes of `config`'s buses.
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            interfaces: config
                .can
                .buses
                .iter()
                .map(|b| b.interface.clone())
                .collect(),
            unknown: Vec::new(),
            unrouted: 0,
        }
    }

    /// The bus of a frame read on `interface`.
    pub(crate) fn route(&mut self, interface: &str) -> Route {
        if self.interfaces.len() <= 1 {
            return Route::Bus(0);
        }
        if let Some(i) = self.interfaces.iter().position(|n| n == interface) {
            return Route::Bus(i);
        }
        self.unrouted += 1;
        if self.unknown.iter().any(|n| n == interface)
            || self.unknown.len() >= MAX_UNKNOWN_INTERFACES
        {
            return Route::Ignore(None);
        }
        self.unknown.push(interface.to_owned());
        Route::Ignore(Some(format!(
            "frames on interface {interface:?} are ignored: no [[can.buses]] entry has it \
             (known: {:?}); they are counted as unrouted_frames",
            self.interfaces
        )))
    }
}

/// What to ask and how often, one poller per bus (in `[[can.buses]]` order): each protocol
/// section is asked on the bus it names. J1939 engine hours are requested every round (many
/// engines send PGN 65253 only on request); everything else on J1939 is broadcast.
pub(crate) fn pollers(config: &Config) -> Vec<poller::Settings> {
    (0..bus_count(config))
        .map(|bus| poller_on(config, bus))
        .collect()
}

/// The poller of bus `bus` (an index into `[[can.buses]]`).
pub(crate) fn poller_on(config: &Config, bus: usize) -> poller::Settings {
    let p = &config.poller;
    let ms = Duration::from_millis;
    let here = |name: &str| bus_index(config, name) == bus;
    poller::Settings {
        obd: config
            .obd
            .as_ref()
            .filter(|o| here(&o.bus))
            .map(|o| ObdTarget {
                extended: o.id_bits == 29,
                pids: o.pids.clone(),
                dtc_modes: if o.dtcs {
                    o.dtc_modes
                        .iter()
                        .map(|m| match m {
                            config::ObdDtcMode::Confirmed => DtcMode::Stored,
                            config::ObdDtcMode::Pending => DtcMode::Pending,
                            config::ObdDtcMode::Permanent => DtcMode::Permanent,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            }),
        uds: config
            .uds
            .iter()
            .enumerate()
            .filter(|(_, u)| here(&u.bus))
            .map(|(i, u)| UdsTarget {
                name: u.label(i),
                request_id: u.request_id,
                response_id: u.response_id,
                extended: u.is_extended(),
                address: u.address_bytes(),
                dids: u.dids.iter().map(|d| d.did).collect(),
                dtc_status_mask: (u.dtc_status_mask != 0).then_some(u.dtc_status_mask),
            })
            .collect(),
        j1939: config
            .j1939
            .as_ref()
            .filter(|j| here(&j.bus))
            .map(|j| J1939Target {
                own_address: j.own_address,
                request_pgns: vec![PGN_ENGINE_HOURS],
                dtc_request_pgns: if j.dm2 { vec![PGN_DM2] } else { Vec::new() },
            }),
        interval_on: ms(p.on_ms),
        interval_accessory: ms(p.accessory_ms),
        // 0 means: ask nothing while the ignition is off.
        interval_off: (p.off_ms != 0).then(|| ms(p.off_ms)),
        min_gap: ms(p.min_gap_ms),
        response_timeout: ms(p.response_timeout_ms),
        pending_timeout: ms(p.p2_star_ms),
        ignition_probe: (config.ignition.source == crate::config::IgnitionSource::Obd
            && config.obd.is_some())
        .then_some(poller::IgnitionProbe {
            on_volts: config.ignition.on_volts,
            off_after_silent: config.ignition.off_after_silent,
        }),
        ..poller::Settings::default()
    }
}

/// The first bus's poller (configs with one bus; the ignition tests).
#[cfg(test)]
pub(crate) fn poller(config: &Config) -> poller::Settings {
    poller_on(config, 0)
}

/// What the observer reads on each bus (protocols, DID tables, DBC plan; one decoder per
/// `[[can.buses]]` entry) and how it judges it (plausibility, per-code severities).
pub fn observer(loaded: &Loaded) -> observe::Settings {
    let config = &loaded.config;
    observe::Settings {
        decoders: (0..bus_count(config))
            .map(|bus| decoder_on(loaded, bus))
            .collect(),
        max_plausible_kmh: config.observe.max_plausible_kmh,
        overrides: config
            .dtc
            .overrides
            .iter()
            .map(|o| (o.code, o.severity))
            .collect(),
    }
}

/// The passive decoder of bus `bus`.
fn decoder_on(loaded: &Loaded, bus: usize) -> passive::Settings {
    let config = &loaded.config;
    let here = |name: &str| bus_index(config, name) == bus;
    passive::Settings {
        obd_id_bits: config
            .obd
            .as_ref()
            .filter(|o| here(&o.bus))
            .map(|o| o.id_bits),
        uds: config
            .uds
            .iter()
            .filter(|u| here(&u.bus))
            .map(|u| passive::UdsSettings {
                request_id: u.request_id,
                response_id: u.response_id,
                address: u.address_bytes(),
                dids: u.dids.iter().map(|d| (d.spec(), d.role)).collect(),
            })
            .collect(),
        j1939: config
            .j1939
            .as_ref()
            .filter(|j| here(&j.bus))
            .map(|j| passive::J1939Settings {
                signal_sources: j.signal_sources.clone(),
            }),
        dbc: loaded
            .dbc
            .as_ref()
            .filter(|_| config.dbc.as_ref().is_some_and(|d| here(&d.bus)))
            .map(|d| passive::DbcSettings {
                plan: d.plan.clone(),
                roles: d.roles.clone(),
                parked_values: config
                    .dbc
                    .as_ref()
                    .and_then(|c| c.park.as_ref())
                    .map(|p| p.parked_values.clone())
                    .unwrap_or_default(),
            }),
    }
}

/// The kernel receive filters for what the config reads on bus `bus` (see
/// [`filters::kernel_filters`]).
pub fn kernel_filters(loaded: &Loaded, bus: usize) -> Vec<KernelFilter> {
    let config = &loaded.config;
    let here = |name: &str| bus_index(config, name) == bus;
    filters::kernel_filters(&filters::Reads {
        obd_extended: config
            .obd
            .as_ref()
            .filter(|o| here(&o.bus))
            .map(|o| o.id_bits == 29),
        uds_responses: config
            .uds
            .iter()
            .filter(|u| here(&u.bus))
            .map(|u| (u.response_id, u.is_extended()))
            .collect(),
        j1939: config.j1939.as_ref().is_some_and(|j| here(&j.bus)),
        dbc_ids: loaded
            .dbc
            .as_ref()
            .filter(|_| config.dbc.as_ref().is_some_and(|d| here(&d.bus)))
            .map(|d| d.plan.can_ids().collect())
            .unwrap_or_default(),
    })
}

/// The rules' settings: the vehicle, schedule and prompt sections, and when the odometer is
/// worth writing and reporting.
pub fn rules(config: &Config) -> crate::rules::Settings {
    crate::rules::Settings {
        vehicle: config.vehicle.clone(),
        maintenance: config.maintenance.clone(),
        prompts: config.prompts.clone(),
        odometer_every_m: config.store.odometer_every_m,
        odometer_every_s: config.store.odometer_every_s,
        outbox_odometer_every_m: config.outbox.odometer_every_m,
    }
}

/// The store's options: the outbox bound, sled's cache, and no background flush — the runtime
/// coalesces changes and flushes each write itself (see [`write_every`]).
pub(crate) fn store(config: &Config) -> StoreOptions {
    StoreOptions {
        max_outbox: config.outbox.max_records,
        flush_every_ms: None,
        cache_bytes: u64::from(config.store.cache_kb) * 1024,
    }
}

/// How often the runtime writes what changed (`[store] write_every_s`).
pub(crate) fn write_every(config: &Config) -> Duration {
    Duration::from_secs(u64::from(config.store.write_every_s))
}

/// The data directory (`[store] path`, resolved against the config's folder).
pub fn data_dir(config: &Config) -> PathBuf {
    config.store_path()
}

/// Where the HMI API listens (`[hmi] listen`).
pub(crate) fn hmi_listen(config: &Config) -> SocketAddr {
    config.hmi.listen
}

/// The address the `prompts` subcommand talks to: `--hmi`, else `[hmi].listen` of the config
/// (an unspecified address such as 0.0.0.0 becomes loopback), else the default.
///
/// # Errors
/// The config cannot be read, or listens on port 0 (its port is only in its log).
pub fn hmi_address(hmi: Option<SocketAddr>, config: Option<&Path>) -> Result<SocketAddr, String> {
    if let Some(addr) = hmi {
        return Ok(addr);
    }
    let Some(path) = config else {
        return Ok(config::Hmi::default().listen);
    };
    // Only the [hmi] section matters here: no need to load and check the DBC.
    let config = Config::read(path).map_err(|e| e.to_string())?;
    let mut addr = hmi_listen(&config);
    if addr.port() == 0 {
        return Err(format!(
            "{}: [hmi].listen has port 0 (any free port); pass --hmi with the port the agent logged",
            path.display()
        ));
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            Ipv4Addr::LOCALHOST.into()
        } else {
            Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

/// The sync's settings, its TLS files read; `None` without `[sync]`. Trusts the config's
/// checks for the values ([`load`] ran them).
///
/// # Errors
/// [`SyncError::Config`] when the link needs TLS and `[sync.tls]` is missing, or a TLS file
/// cannot be used.
pub fn sync(config: &Config) -> Result<Option<sync::Settings>, SyncError> {
    let Some(s) = &config.sync else {
        return Ok(None);
    };
    let tls = if s.uses_tls() {
        let Some(files) = &s.tls else {
            return Err(SyncError::Config {
                problems: vec![Problem::new(key(SYNC_TLS, "ca"), config::MQTTS_NEEDS_TLS)],
            });
        };
        let files = tls_files(config, files);
        Some(
            tls::client_config(&files, SYNC_TLS, &config.vehicle.vin)
                .map_err(|problems| SyncError::Config { problems })?,
        )
    } else {
        None
    };
    Ok(Some(sync::Settings {
        vin: config.vehicle.vin,
        client_id: s
            .client_id
            .clone()
            .unwrap_or_else(|| config.vehicle.vin.to_string()),
        broker: s.broker.clone(),
        keep_alive: Duration::from_secs(u64::from(s.keep_alive_s)),
        limits: batch::Limits {
            max_records: s.batch_max_records,
            max_bytes: s.batch_max_bytes,
            max_age: Duration::from_millis(s.batch_max_age_ms),
        },
        inflight: s.inflight,
        backoff_min: Duration::from_millis(s.backoff_min_ms),
        backoff_max: Duration::from_millis(s.backoff_max_ms),
        heartbeat: Duration::from_secs(s.heartbeat_s),
        tls,
    }))
}

/// The `[sync.tls]` files, resolved against the config's folder.
fn tls_files(config: &Config, files: &config::SyncTls) -> TlsFiles {
    TlsFiles {
        ca: config.resolve(&files.ca),
        client: files
            .cert
            .as_ref()
            .zip(files.key.as_ref())
            .map(|(cert, key)| (config.resolve(cert), config.resolve(key))),
    }
}

/// Reads, checks and loads a config with its DBC ([`config::load`]), and checks in the same
/// pass the files only building the settings reads — the TLS files `[sync.tls]` names — so
/// every problem is listed at once: what `check-config` and every subcommand use.
///
/// # Errors
/// As [`config::load`], with the TLS files' problems in [`ConfigError::Invalid`].
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    config::load_with(path, |config, problems: &mut Problems| {
        if let Some(files) = config.sync.as_ref().and_then(|s| s.tls.as_ref())
            && let Err(more) =
                tls::client_config(&tls_files(config, files), SYNC_TLS, &config.vehicle.vin)
        {
            problems.extend(more);
        }
    })
}

#[cfg(test)]
mod tests;
