//! Sans-IO protocol decoders: bytes (or frames) and the current time in, typed values out.
//! No sockets, no clocks, no tokio in here.

pub mod dbc;
pub mod isotp;
pub mod j1939;
pub(crate) mod obd;
pub(crate) mod uds;
