//! SocketCAN: the live bus on a Linux head unit. A thin shell — open the interface, install
//! kernel filters, convert frames to [`CanFrame`] and back — and nothing else; every decoder sits
//! above [`FrameSource`].
//!
//! One `CAN_RAW` socket with FD frames enabled serves classic and FD buses alike. Kernel filters
//! keep traffic the config does not need (most of a saturated bus) out of user space. Error
//! frames (bus-off, controller problems) are received, counted, the first few logged, and
//! skipped. Whether the interface exists and is up ([`interface_is_up`]) and which errors cost
//! one frame rather than the socket ([`is_transient`]) are answered here for the bus loop in
//! [`crate::runtime`], which reopens a lost interface. The kernel of the development machines
//! has no AF_CAN, so the test below runs only where a `vcan0` interface exists; the emulated
//! head unit (`tests/headunit/`) runs all of this on a real kernel.

use std::time::Instant;

use socketcan::{CanAnyFrame, CanFdFrame, CanFilter, EmbeddedFrame, SocketOptions};

use super::CanFrame;
use super::filters::KernelFilter;
use super::source::{FrameSink, FrameSource, TimedFrame};
use crate::Error;

/// Error frames logged one by one before the rest are only counted.
const ERROR_FRAMES_LOGGED: u64 = 10;
/// Linux's `ENOBUFS` (the same number on every architecture): the interface's transmit queue
/// is full, as on a saturated bus. Written out to spare a `libc` dependency for one constant.
const ENOBUFS: i32 = 105;

/// The SocketCAN form of a filter: the EFF flag is part of id and mask, so 11- and 29-bit ids
/// never match each other's filters.
fn to_socketcan(f: KernelFilter) -> CanFilter {
    const EFF: u32 = 0x8000_0000;
    let (id, mask) = if f.extended {
        (f.id | EFF, f.mask | EFF)
    } else {
        (f.id, f.mask | EFF)
    };
    CanFilter::new(id, mask)
}

/// A live CAN or CAN FD interface.
pub(crate) struct SocketCan {
    socket: socketcan::tokio::CanFdSocket,
    interface: String,
    start: Instant,
    error_frames: u64,
}

impl SocketCan {
    /// Opens `interface` (e.g. `can0`) and installs `filters` (none: receive everything); the
    /// filters a config needs come from [`super::filters::kernel_filters`]. Error frames of
    /// every class are received (and counted, not returned).
    ///
    /// # Errors
    /// [`Error::Io`] naming the interface if it cannot be opened or filtered.
    pub(crate) fn open(interface: &str, filters: &[KernelFilter]) -> Result<Self, Error> {
        let io = |what: &str, source| Error::Io {
            context: format!("{what} CAN interface {interface}"),
            source,
        };
        let socket =
            socketcan::tokio::CanFdSocket::open(interface).map_err(|e| io("opening", e))?;
        if !filters.is_empty() {
            let filters: Vec<CanFilter> = filters.iter().map(|f| to_socketcan(*f)).collect();
            socket
                .set_filters(&filters)
                .map_err(|e| io("setting filters on", e))?;
        }
        socket
            .set_error_filter_accept_all()
            .map_err(|e| io("receiving error frames from", e))?;
        Ok(Self {
            socket,
            interface: interface.to_owned(),
            start: Instant::now(),
            error_frames: 0,
        })
    }

    /// Error frames received and skipped so far.
    pub fn error_frames(&self) -> u64 {
        self.error_frames
    }
}

/// Converts a SocketCAN frame; `None` for error frames.
fn from_socketcan(frame: &CanAnyFrame) -> Option<CanFrame> {
    match frame {
        CanAnyFrame::Normal(f) => CanFrame::new(f.id(), f.data()),
        CanAnyFrame::Remote(f) => CanFrame::new_remote(f.id(), f.dlc()),
        CanAnyFrame::Fd(f) => CanFrame::new_fd(f.id(), f.data(), f.is_brs()),
        CanAnyFrame::Error(_) => None,
    }
}

impl FrameSource for SocketCan {
    async fn recv(&mut self) -> Result<Option<TimedFrame>, Error> {
        loop {
            let frame = self.socket.read_frame().await.map_err(|source| Error::Io {
                context: format!("reading CAN interface {}", self.interface),
                source,
            })?;
            match from_socketcan(&frame) {
                Some(frame) => {
                    return Ok(Some(TimedFrame {
                        frame,
                        at: self.start.elapsed(),
                        wall: Some(crate::clock::wall_now()),
                    }));
                }
                None => {
                    self.error_frames += 1;
                    if self.error_frames <= ERROR_FRAMES_LOGGED {
                        let (class, what) = match frame {
                            CanAnyFrame::Error(e) => (e.error_bits(), e.into_error().to_string()),
                            _ => (0, String::new()),
                        };
                        tracing::warn!(interface = %self.interface, class = %format_args!("{class:#x}"),
                            error = %what, count = self.error_frames, "CAN error frame");
                        if self.error_frames == ERROR_FRAMES_LOGGED {
                            tracing::warn!(interface = %self.interface,
                                "further CAN error frames are counted, not logged");
                        }
                    }
                }
            }
        }
    }
}

impl FrameSink for SocketCan {
    async fn send(&mut self, frame: &CanFrame) -> Result<(), Error> {
        let io = |source| Error::Io {
            context: format!("writing to CAN interface {}", self.interface),
            source,
        };
        let id = frame.id();
        let any = if frame.is_fd() {
            let mut fd = CanFdFrame::new(id, frame.data()).ok_or_else(|| io(invalid(frame)))?;
            fd.set_brs(frame.is_brs());
            CanAnyFrame::Fd(fd)
        } else if frame.is_remote_frame() {
            CanAnyFrame::Remote(
                socketcan::CanRemoteFrame::new_remote(id, frame.dlc())
                    .ok_or_else(|| io(invalid(frame)))?,
            )
        } else {
            CanAnyFrame::Normal(
                socketcan::CanDataFrame::new(id, frame.data()).ok_or_else(|| io(invalid(frame)))?,
            )
        };
        self.socket.write_frame(&any).await.map_err(io)
    }
}

/// Whether `interface` exists and is up, from `/sys/class/net/<interface>/flags` (`IFF_UP` is
/// bit 0). Where sysfs is not mounted it cannot tell and says yes: opening is then the test.
pub fn interface_is_up(interface: &str) -> bool {
    let net = std::path::Path::new("/sys/class/net");
    if !net.is_dir() {
        return true;
    }
    std::fs::read_to_string(net.join(interface).join("flags")).is_ok_and(|flags| {
        u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).is_ok_and(|f| f & 1 == 1)
    })
}

/// Whether an error from [`SocketCan`] costs one frame only — the transmit queue is full
/// (`ENOBUFS`), the socket would block, or the frame cannot be sent on this interface — rather
/// than the socket (interface down or gone: reopen).
pub fn is_transient(error: &Error) -> bool {
    match error {
        Error::Io { source, .. } => {
            source.raw_os_error() == Some(ENOBUFS)
                || matches!(
                    source.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::InvalidInput
                )
        }
        _ => false,
    }
}

fn invalid(frame: &CanFrame) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("frame {frame:?} cannot be sent"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn filters_keep_11_and_29_bit_apart() {
        let f = to_socketcan(KernelFilter::exact(0x7E8, false));
        let g = to_socketcan(KernelFilter::exact(0x18FE_CA00, true));
        assert_ne!(format!("{f:?}"), format!("{g:?}"));
    }

    #[test]
    fn a_full_queue_costs_a_frame_a_lost_interface_the_socket() {
        let err = |code| Error::Io {
            context: "writing to CAN interface can0".into(),
            source: std::io::Error::from_raw_os_error(code),
        };
        assert!(is_transient(&err(ENOBUFS)));
        // ENETDOWN, ENODEV, ENXIO: down, deleted, unbound.
        for code in [100, 19, 6] {
            assert!(!is_transient(&err(code)), "errno {code}");
        }
    }

    #[test]
    fn interface_state_from_sysfs() {
        if !std::path::Path::new("/sys/class/net/lo").exists() {
            println!("skipping: no sysfs");
            return;
        }
        assert!(interface_is_up("lo"));
        assert!(!interface_is_up("rapport-none0"));
    }

    /// Runs only where a `vcan0` interface exists (`ip link add vcan0 type vcan`); the kernel
    /// of the development and CI machines has no CAN support, so it says so and returns.
    #[tokio::test(flavor = "current_thread")]
    async fn vcan0_round_trip() {
        if !std::path::Path::new("/sys/class/net/vcan0").exists() {
            println!("skipping: no vcan0 interface (this kernel has no CAN support)");
            return;
        }
        let mut rx = SocketCan::open("vcan0", &[KernelFilter::exact(0x7E8, false)]).unwrap();
        let mut tx = SocketCan::open("vcan0", &[]).unwrap();
        let other = CanFrame::from_raw(0x123, false, &[1]).unwrap();
        let wanted = CanFrame::from_raw(0x7E8, false, &[0x03, 0x41, 0x0D, 0x32]).unwrap();
        tx.send(&other).await.unwrap();
        tx.send(&wanted).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got.frame, wanted, "the kernel filter drops 0x123");
    }
}
