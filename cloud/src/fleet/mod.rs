//! The fleet: registry, layering, strategies and partner alerts over what ingest learned.
//!
//! [`model`] holds the domain types every part shares.

pub mod model;
pub mod strategy;
