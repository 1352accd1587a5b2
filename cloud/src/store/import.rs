//! `rapport-cloud import-sled`: a one-machine sled store (stopped) moved into the PostgreSQL
//! store a config names — refused when that database already holds anything, so a second run
//! cannot double what the first did.
//!
//! Owns opening both stores and the fleet's rules the move needs (each driver is placed at
//! the import's instant, as the sled store's start would, and its next changes scheduled).
//! Does not own the copy itself ([`crate::store::postgres`]'s import).

use std::fmt;
use std::path::Path;

use rapport_shared::Timestamp;

use crate::config::{Backend, Config};
use crate::fleet::shell::{FleetSettings, rules_from};
use crate::store::StoreError;
use crate::store::postgres::PgStore;
use crate::store::sled::SledStore;

/// What an import moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Vehicles (seen, registered, or both).
    pub vehicles: u64,
    /// Records of the record logs.
    pub records: u64,
    /// Timeline entries.
    pub timeline: u64,
    /// Alerts.
    pub alerts: u64,
    /// Webhook messages (pending, delivered markers, dead letters).
    pub webhooks: u64,
    /// Downlinks queued.
    pub downlinks: u64,
    /// Partners added through the API.
    pub partners: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} vehicles, {} records, {} timeline entries, {} alerts, {} webhooks, \
             {} downlinks, {} partners",
            self.vehicles,
            self.records,
            self.timeline,
            self.alerts,
            self.webhooks,
            self.downlinks,
            self.partners
        )
    }
}

/// Moves the sled store in `from` into the PostgreSQL store `config` names, placing the
/// drivers at `now` (see the module doc). Blocking.
///
/// # Errors
/// [`StoreError::Import`] for a missing sled store, a config that is not PostgreSQL's or a
/// target that is not empty; the stores.
pub fn import_sled(from: &Path, config: &Config, now: Timestamp) -> Result<Summary, StoreError> {
    if config.store.backend != Backend::Postgres {
        return Err(StoreError::Import(
            "the config's [store] backend is not \"postgres\": nothing to import into".into(),
        ));
    }
    let has_store = std::fs::read_dir(from)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if !has_store {
        return Err(StoreError::Import(format!(
            "no sled store in {}",
            from.display()
        )));
    }
    let sled = SledStore::open(from)?;
    let pg = PgStore::open(&config.store, &|v| std::env::var(v).ok())?;
    let settings = FleetSettings {
        registry: None,
        ..FleetSettings::from_config(config)
    };
    let api_partners = sled.keys().partners()?;
    let rules = rules_from(&settings, api_partners)
        .map_err(|e| StoreError::Import(format!("the config's fleet: {e}")))?;
    let summary = pg.import_sled(&sled, &rules, now)?;
    tracing::info!(from = %from.display(), to = %pg.url(), %summary, "sled store imported");
    Ok(summary)
}
