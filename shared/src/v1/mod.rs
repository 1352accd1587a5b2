//! Version 1 of the wire protocol: message types, their byte layout and the topics.

pub mod codec;
pub mod downlink;
mod open_enum;
pub mod schedule;
pub mod topic;
pub mod uplink;
