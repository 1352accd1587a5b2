//! CAN frames and where they come from: the frame type, trace files, the virtual bus and
//! SocketCAN. Nothing here decodes a protocol; that is [`crate::proto`].

pub mod candump;
pub mod filters;
pub(crate) mod frame;
pub mod replay;
#[cfg(target_os = "linux")]
pub(crate) mod socketcan;
pub mod source;
pub mod trace;

pub use frame::CanFrame;
#[cfg(feature = "desk")]
pub mod virtual_bus;
