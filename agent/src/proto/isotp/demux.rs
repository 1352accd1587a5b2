//! Several ECUs answering one functional request at once ([`Demux`]): one [`Receiver`] per
//! responding rx id, a bounded number of them, so interleaved multi-frame answers from
//! 0x7E8, 0x7E9, 0x7EA reassemble independently. Does not decide which ids to listen to —
//! the caller feeds only the frames it wants reassembled.

use core::time::Duration;

use super::{Config, IsoTpError, Receiver, RxEvent};

/// Reassembles messages from up to `max_channels` rx ids at once.
#[derive(Debug, Clone)]
pub struct Demux {
    config: Config,
    passive: bool,
    max_channels: usize,
    channels: Vec<Receiver>,
}

impl Demux {
    /// Active demux: each channel answers first frames with flow control, which the caller
    /// sends on that ECU's tx id (e.g. rx 0x7E8 → tx 0x7E0).
    pub fn new(config: Config, max_channels: usize) -> Self {
        Self {
            config,
            passive: false,
            max_channels,
            channels: Vec::new(),
        }
    }

    /// Passive demux for trace replay: never asks for flow control.
    pub fn new_passive(config: Config, max_channels: usize) -> Self {
        Self {
            passive: true,
            ..Self::new(config, max_channels)
        }
    }

    /// Takes one frame from rx CAN id `id`; see [`Receiver::on_frame`].
    ///
    /// A new id gets a free channel: a new one while fewer than `max_channels` exist,
    /// otherwise an idle one is re-targeted (keeping its buffer).
    ///
    /// # Errors
    /// [`IsoTpError::NoFreeChannel`] when the id is new and every channel is mid-reception;
    /// otherwise as [`Receiver::on_frame`].
    pub fn on_frame(
        &mut self,
        id: u32,
        data: &[u8],
        now: Duration,
    ) -> Result<RxEvent<'_>, IsoTpError> {
        let index = match self.channels.iter().position(|rx| rx.id() == id) {
            Some(index) => index,
            None => self.claim(id)?,
        };
        match self.channels.get_mut(index) {
            Some(rx) => rx.on_frame(data, now),
            // `claim` returned an index into `channels`.
            None => Err(IsoTpError::NoFreeChannel {
                id,
                max: self.max_channels,
            }),
        }
    }

    fn claim(&mut self, id: u32) -> Result<usize, IsoTpError> {
        if self.channels.len() < self.max_channels {
            self.channels.push(if self.passive {
                Receiver::new_passive(id, self.config)
            } else {
                Receiver::new(id, self.config)
            });
            return Ok(self.channels.len() - 1);
        }
        let index = self
            .channels
            .iter()
            .position(|rx| !rx.is_receiving())
            .ok_or(IsoTpError::NoFreeChannel {
                id,
                max: self.max_channels,
            })?;
        if let Some(rx) = self.channels.get_mut(index) {
            rx.reuse(id);
        }
        Ok(index)
    }

    /// Checks every channel's N_Cr timer.
    ///
    /// # Errors
    /// The first [`IsoTpError::Timeout`] found; that channel is reset, so call again until
    /// `Ok` to collect them all.
    pub fn poll(&mut self, now: Duration) -> Result<(), IsoTpError> {
        self.channels.iter_mut().try_for_each(|rx| rx.poll(now))
    }

    /// The earliest time [`Demux::poll`] should be called, if any channel is receiving.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.channels.iter().filter_map(Receiver::deadline).min()
    }

    /// The channel for `id`, if it has one (e.g. to ask [`Receiver::interrupted`]).
    pub(crate) fn receiver(&self, id: u32) -> Option<&Receiver> {
        self.channels.iter().find(|rx| rx.id() == id)
    }
}
