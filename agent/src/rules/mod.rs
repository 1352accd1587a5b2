//! The agent's judgement: pure rules that turn remembered state, an observation and `now`
//! into decisions. No I/O, no tokio, no clock reads: the shells pass the time in.
//!
//! Owns: the decisions. Does not own: what is remembered ([`crate::memory`]), how it is stored
//! (the store), nor what reaches the screen and when (the HMI and its gate).

pub mod calendar;
pub mod maintenance;
