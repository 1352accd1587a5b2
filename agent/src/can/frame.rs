//! The one CAN frame type the agent passes around: classic CAN and CAN FD, 11- and 29-bit
//! ids, data frames and remote requests.
//!
//! It implements [`embedded_can::Frame`], so protocol code written against that trait takes
//! frames from SocketCAN, a trace file or the virtual bus alike. `embedded-can` covers only
//! classic CAN (0–8 bytes); the FD lengths (12–64 bytes) and flags are this type's own
//! extension. The frame is `Copy` and holds its bytes inline: decoding never allocates per frame.

use embedded_can::{ExtendedId, Id, StandardId};

/// Data lengths a CAN FD frame may carry (ISO 11898-1), beyond the classic 0–8.
pub(crate) const FD_LENGTHS: [usize; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64];

const FLAG_FD: u8 = 1;
const FLAG_BRS: u8 = 2;
const FLAG_ESI: u8 = 4;
const FLAG_RTR: u8 = 8;

/// A CAN or CAN FD frame with its data inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CanFrame {
    id: Id,
    len: u8,
    flags: u8,
    data: [u8; 64],
}

impl CanFrame {
    /// A classic data frame from a raw id; `extended` picks the 29-bit form.
    /// `None` if the id does not fit or there are more than 8 bytes.
    pub fn from_raw(raw_id: u32, extended: bool, data: &[u8]) -> Option<Self> {
        let id = raw_to_id(raw_id, extended)?;
        <Self as embedded_can::Frame>::new(id, data)
    }

    /// A CAN FD data frame. `None` if the length is not one of [`FD_LENGTHS`].
    /// `brs` is the bit-rate-switch flag; it matters on the wire only.
    pub(crate) fn new_fd(id: impl Into<Id>, data: &[u8], brs: bool) -> Option<Self> {
        if !FD_LENGTHS.contains(&data.len()) {
            return None;
        }
        let mut frame = Self::empty(id.into());
        frame.data[..data.len()].copy_from_slice(data);
        frame.len = data.len() as u8;
        frame.flags = FLAG_FD | if brs { FLAG_BRS } else { 0 };
        Some(frame)
    }

    fn empty(id: Id) -> Self {
        Self {
            id,
            len: 0,
            flags: 0,
            data: [0; 64],
        }
    }

    /// The id as a plain number (11 or 29 bits).
    #[inline]
    pub fn raw_id(&self) -> u32 {
        id_to_raw(self.id)
    }

    /// Whether this is a CAN FD frame.
    #[inline]
    pub(crate) fn is_fd(&self) -> bool {
        self.flags & FLAG_FD != 0
    }

    /// Whether the FD bit-rate-switch flag is set.
    pub(crate) fn is_brs(&self) -> bool {
        self.flags & FLAG_BRS != 0
    }

    /// Whether the FD error-state-indicator flag is set.
    pub(crate) fn is_esi(&self) -> bool {
        self.flags & FLAG_ESI != 0
    }

    /// Sets the FD error-state-indicator flag (as read from a trace or socket).
    pub(crate) fn with_esi(mut self, esi: bool) -> Self {
        if esi {
            self.flags |= FLAG_ESI;
        } else {
            self.flags &= !FLAG_ESI;
        }
        self
    }
}

/// Converts a raw id into an [`Id`]; `None` if it does not fit in 11 (or 29) bits.
pub(crate) fn raw_to_id(raw: u32, extended: bool) -> Option<Id> {
    if extended {
        ExtendedId::new(raw).map(Id::Extended)
    } else {
        u16::try_from(raw)
            .ok()
            .and_then(StandardId::new)
            .map(Id::Standard)
    }
}

/// The id as a plain number (11 or 29 bits).
#[inline]
pub(crate) fn id_to_raw(id: Id) -> u32 {
    match id {
        Id::Standard(s) => u32::from(s.as_raw()),
        Id::Extended(e) => e.as_raw(),
    }
}

impl embedded_can::Frame for CanFrame {
    fn new(id: impl Into<Id>, data: &[u8]) -> Option<Self> {
        if data.len() > 8 {
            return None;
        }
        let mut frame = Self::empty(id.into());
        frame.data[..data.len()].copy_from_slice(data);
        frame.len = data.len() as u8;
        Some(frame)
    }

    fn new_remote(id: impl Into<Id>, dlc: usize) -> Option<Self> {
        if dlc > 8 {
            return None;
        }
        let mut frame = Self::empty(id.into());
        frame.len = dlc as u8;
        frame.flags = FLAG_RTR;
        Some(frame)
    }

    #[inline]
    fn is_extended(&self) -> bool {
        matches!(self.id, Id::Extended(_))
    }

    #[inline]
    fn is_remote_frame(&self) -> bool {
        self.flags & FLAG_RTR != 0
    }

    #[inline]
    fn id(&self) -> Id {
        self.id
    }

    #[inline]
    fn dlc(&self) -> usize {
        usize::from(self.len)
    }

    /// The data bytes; empty for a remote frame, whatever its DLC.
    #[inline]
    fn data(&self) -> &[u8] {
        if self.is_remote_frame() {
            &[]
        } else {
            &self.data[..usize::from(self.len)]
        }
    }
}

impl core::fmt::Debug for CanFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use embedded_can::Frame;
        // candump-like: 7E8#0641A6000123, 18FECA00#..., with ## for FD and #R for remote.
        let width = if self.is_extended() { 8 } else { 3 };
        write!(f, "{:0width$X}", self.raw_id(), width = width)?;
        if self.is_remote_frame() {
            return write!(f, "#R{}", self.len);
        }
        if self.is_fd() {
            write!(f, "##{:X}", (self.flags & (FLAG_BRS | FLAG_ESI)) >> 1)?;
        } else {
            f.write_str("#")?;
        }
        for b in self.data() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use embedded_can::Frame;

    #[test]
    fn classic_frame_keeps_id_and_data() {
        let f = CanFrame::from_raw(0x7E8, false, &[0x06, 0x41, 0xA6, 0, 1, 0x23]).unwrap();
        assert_eq!(f.raw_id(), 0x7E8);
        assert!(!f.is_extended());
        assert_eq!(f.data(), &[0x06, 0x41, 0xA6, 0, 1, 0x23]);
        assert_eq!(format!("{f:?}"), "7E8#0641A6000123");
    }

    #[test]
    fn extended_and_limits() {
        let f = CanFrame::from_raw(0x18FE_CA00, true, &[0x40; 8]).unwrap();
        assert!(f.is_extended());
        assert_eq!(format!("{f:?}"), "18FECA00#4040404040404040");
        assert!(
            CanFrame::from_raw(0x800, false, &[]).is_none(),
            "11-bit overflow"
        );
        assert!(
            CanFrame::from_raw(0x2000_0000, true, &[]).is_none(),
            "29-bit overflow"
        );
        assert!(
            CanFrame::from_raw(0x7DF, false, &[0; 9]).is_none(),
            "classic max 8"
        );
    }

    #[test]
    fn fd_lengths_only() {
        let id = raw_to_id(0x14C, false).unwrap();
        assert!(CanFrame::new_fd(id, &[0; 12], true).is_some());
        assert!(CanFrame::new_fd(id, &[0; 13], true).is_none());
        let f = CanFrame::new_fd(id, &[0xAB; 64], false).unwrap();
        assert!(f.is_fd() && !f.is_brs());
        assert_eq!(f.data().len(), 64);
    }

    #[test]
    fn remote_frame_has_no_data() {
        let f = CanFrame::new_remote(raw_to_id(0x123, false).unwrap(), 4).unwrap();
        assert!(f.is_remote_frame());
        assert_eq!(f.dlc(), 4);
        assert!(f.data().is_empty());
    }
}
