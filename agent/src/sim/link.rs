//! The server end of an ISO-TP channel for a simulated diagnostic ECU: takes the tester's
//! frames off the bus, reassembles requests, segments responses and paces them by the
//! tester's flow control. Shared by the OBD-II and UDS ECUs.
//!
//! Does not own: what requests mean (the ECUs do) or the bus (frames go into `out`).

use core::time::Duration;

use embedded_can::Frame;

use crate::can::CanFrame;
use crate::can::frame::raw_to_id;
use crate::proto::isotp::{Config, Receiver, RxEvent, Sender, TxPoll};
use crate::proto::obd;

/// The CAN ids of one diagnostic ECU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IsoTpAddress {
    /// Physical request id (tester → ECU); the tester's flow control arrives here too.
    pub(crate) request_id: u32,
    /// Response id (ECU → tester).
    pub(crate) response_id: u32,
    /// Functional (broadcast) request id, if the ECU listens to one.
    pub(crate) functional_id: Option<u32>,
    /// 29-bit ids.
    pub(crate) extended: bool,
}

impl IsoTpAddress {
    /// 11-bit OBD-II ECU `ecu` (0–7, clamped): 0x7E0+n → 0x7E8+n, functional 0x7DF.
    pub(crate) fn obd_11bit(ecu: u8) -> Self {
        let ecu = u32::from(ecu.min(7));
        Self {
            request_id: u32::from(obd::PHYSICAL_REQUEST_ID_BASE) + ecu,
            response_id: u32::from(obd::RESPONSE_ID_BASE) + ecu,
            functional_id: Some(u32::from(obd::FUNCTIONAL_REQUEST_ID)),
            extended: false,
        }
    }

    /// 29-bit OBD-II ECU at address `ecu`: 0x18DA<ecu>F1 → 0x18DAF1<ecu>, functional
    /// 0x18DB33F1.
    pub(crate) fn obd_29bit(ecu: u8) -> Self {
        Self {
            request_id: obd::physical_request_id_29(ecu),
            response_id: obd::RESPONSE_ID_29_BASE | u32::from(ecu),
            functional_id: Some(obd::FUNCTIONAL_REQUEST_ID_29),
            extended: true,
        }
    }

    /// A physical-only 11-bit pair such as 0x714 → 0x77E.
    pub(crate) fn pair_11bit(request_id: u16, response_id: u16) -> Self {
        Self {
            request_id: u32::from(request_id),
            response_id: u32::from(response_id),
            functional_id: None,
            extended: false,
        }
    }
}

/// One ECU's ISO-TP server end.
#[derive(Debug)]
pub(crate) struct Link {
    address: IsoTpAddress,
    physical: Receiver,
    functional: Receiver,
    sender: Sender,
    request: Vec<u8>,
    request_functional: bool,
    tx_deadline: Option<Duration>,
}

impl Link {
    pub(crate) fn new(address: IsoTpAddress, config: Config) -> Self {
        Self {
            address,
            physical: Receiver::new(address.request_id, config),
            // Functional requests are single frames (ISO 15765-4): never owe flow control.
            functional: Receiver::new_passive(address.functional_id.unwrap_or(0), config),
            sender: Sender::new(address.response_id, config),
            request: Vec::with_capacity(64),
            request_functional: false,
            tx_deadline: None,
        }
    }

    /// The request [`Link::on_frame`] last completed.
    pub(crate) fn request(&self) -> &[u8] {
        &self.request
    }

    /// Whether that request came on the functional id.
    pub(crate) fn request_functional(&self) -> bool {
        self.request_functional
    }

    /// Takes one frame from the bus; `true` when it completed a request (see
    /// [`Link::request`]). Flow control we owe goes into `out`.
    pub(crate) fn on_frame(
        &mut self,
        frame: &CanFrame,
        now: Duration,
        out: &mut Vec<CanFrame>,
    ) -> bool {
        if frame.is_extended() != self.address.extended || frame.is_remote_frame() {
            return false;
        }
        let id = frame.raw_id();
        let data = frame.data();
        let functional = Some(id) == self.address.functional_id;
        if id != self.address.request_id && !functional {
            return false;
        }
        if !functional && data.first().is_some_and(|b| b >> 4 == 3) {
            if let Err(err) = self.sender.on_flow_control(data, now) {
                tracing::debug!(cause = %err, "simulated ECU: tester flow control refused");
            }
            self.pump(now, out);
            return false;
        }
        let rx = if functional {
            &mut self.functional
        } else {
            &mut self.physical
        };
        match rx.on_frame(data, now) {
            Ok(RxEvent::Complete(payload)) => {
                self.request.clear();
                self.request.extend_from_slice(payload);
                self.request_functional = functional;
                true
            }
            Ok(RxEvent::FlowControl(fc)) => {
                if let Some(f) = build_frame(self.address.response_id, self.address.extended, fc) {
                    out.push(f);
                }
                false
            }
            Ok(RxEvent::Pending) => false,
            Err(err) => {
                tracing::debug!(cause = %err, "simulated ECU: request frame refused");
                false
            }
        }
    }

    /// Starts sending `payload`, dropping any response still in flight, as a real ECU
    /// does when the tester asks again.
    pub(crate) fn respond(&mut self, payload: &[u8], now: Duration, out: &mut Vec<CanFrame>) {
        self.sender.reset();
        if let Err(err) = self.sender.start(payload) {
            tracing::debug!(cause = %err, "simulated ECU: response not sent");
            return;
        }
        self.pump(now, out);
    }

    /// Sends consecutive frames that are due.
    pub(crate) fn poll(&mut self, now: Duration, out: &mut Vec<CanFrame>) {
        if self.tx_deadline.is_some_and(|t| t <= now) {
            self.pump(now, out);
        }
    }

    /// When [`Link::poll`] has something to do.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.tx_deadline
    }

    /// Drops everything in flight (power off).
    pub(crate) fn reset(&mut self) {
        self.sender.reset();
        self.physical.reset();
        self.functional.reset();
        self.tx_deadline = None;
    }

    fn pump(&mut self, now: Duration, out: &mut Vec<CanFrame>) {
        self.tx_deadline = None;
        loop {
            match self.sender.poll(now) {
                Ok(TxPoll::Send(bytes)) => {
                    let frame = build_frame(self.address.response_id, self.address.extended, bytes);
                    if let Some(f) = frame {
                        out.push(f);
                    }
                }
                Ok(TxPoll::WaitUntil(t)) => {
                    self.tx_deadline = Some(t);
                    return;
                }
                Ok(TxPoll::Done) => return,
                Err(err) => {
                    tracing::debug!(cause = %err, "simulated ECU: response dropped");
                    return;
                }
            }
        }
    }
}

/// A classic frame for up to 8 bytes, an FD frame beyond.
fn build_frame(id: u32, extended: bool, bytes: &[u8]) -> Option<CanFrame> {
    if bytes.len() <= 8 {
        CanFrame::from_raw(id, extended, bytes)
    } else {
        CanFrame::new_fd(raw_to_id(id, extended)?, bytes, false)
    }
}
