//! The agent's judgement: pure rules that turn remembered state, an observation and `now`
//! into decisions. No I/O, no tokio, no clock reads: the shells pass the time in.
//!
//! Owns: the decisions — [`engine`] (the life of prompts, fault histories, write coalescing),
//! [`conditions`] (what is worth a prompt, and its words), [`maintenance`] (due arithmetic),
//! [`calendar`] (civil dates), [`service`] (a service case's words). Does not own: what is remembered ([`crate::memory`]), how it is
//! stored ([`crate::store`]), nor when a prompt may be on the screen ([`crate::gate`]).

pub mod calendar;
pub(crate) mod conditions;
pub(crate) mod engine;
pub(crate) mod maintenance;
pub(crate) mod service;

pub use engine::{Applied, DriverAction, MAX_SNOOZE_MINUTES, Rules, RulesError, Settings};
