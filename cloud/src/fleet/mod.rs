//! The fleet: registry, layering, strategies and partner alerts over what ingest learned.
//!
//! [`model`] holds the domain types every part shares.

pub mod alerts;
pub mod core;
pub mod driver;
pub mod layering;
pub mod layers;
pub mod model;
pub mod partners;
pub mod registry;
pub mod schedule;
pub mod shell;
pub mod store;
pub mod strategy;
