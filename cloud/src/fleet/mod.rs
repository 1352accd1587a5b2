//! The fleet: registry, layering, strategies and partner alerts over what ingest learned.
//!
//! [`model`] holds the domain types every part shares. The sans-IO parts: [`driver`] (what a
//! record changes for the driver), [`layers`] (the rules) and [`layering`] (every vehicle's
//! place and next change, in memory), [`strategy`], [`alerts`], [`partners`], [`registry`],
//! [`schedule`] (time indexes). Their decisions over the store: [`core`]; the store's keys:
//! [`store`]; the async shell that locks, commits and publishes: [`shell`]; what the API
//! reads: [`reads`]. The fleet owns its config sections (`[layers]`, `[alerts]`,
//! `[[partner]]`) beside their rules and never reads the config file itself.

pub mod alerts;
pub mod core;
pub mod driver;
pub mod layering;
pub mod layers;
pub mod model;
pub mod owner;
pub mod partners;
pub mod reads;
pub mod registry;
pub mod schedule;
pub mod shell;
pub mod store;
pub mod strategy;
#[cfg(test)]
mod test_time;
