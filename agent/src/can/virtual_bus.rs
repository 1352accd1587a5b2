//! An in-memory broadcast CAN bus for tests, the testbed and benchmarks.
//!
//! Owns: nodes and their bounded receive queues, delivery in send order stamped with the
//! send time, the count of frames a slow node lost, and an optional tap that records every
//! frame (for writing traces). Does not own: time (every call is given `now`), arbitration,
//! bit timing or error frames — a frame sent is on the bus at once, whole — nor what the
//! frames mean (the simulated ECUs in [`crate::sim`] and the protocol code do).
//!
//! Once the queues have reached their capacity nothing allocates per frame: each queue is a
//! `VecDeque` reserved up front, and a full queue drops its oldest frame to make room.

use std::collections::VecDeque;

use core::time::Duration;

use super::CanFrame;

/// A node on a [`VirtualBus`], handed out by [`VirtualBus::attach`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u16);

impl NodeId {
    /// The node's index on its bus (attach order, from 0).
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A frame with the time it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamped {
    /// When it went on the bus.
    pub at: Duration,
    /// The frame.
    pub frame: CanFrame,
}

/// One frame as the tap saw it: when, from whom (`None`: injected from outside), what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapRecord {
    /// When it went on the bus.
    pub at: Duration,
    /// The sending node, `None` for [`VirtualBus::inject`].
    pub(crate) from: Option<NodeId>,
    /// The frame.
    pub frame: CanFrame,
}

#[derive(Debug)]
struct Node {
    queue: VecDeque<Stamped>,
    dropped: u64,
}

/// An in-memory broadcast bus: a frame one node sends reaches every other node's queue.
#[derive(Debug)]
pub struct VirtualBus {
    nodes: Vec<Node>,
    queue_capacity: usize,
    tap: Option<Vec<TapRecord>>,
    sent: u64,
}

impl VirtualBus {
    /// A bus whose nodes each queue at most `queue_capacity` frames (at least 1).
    pub fn new(queue_capacity: usize) -> Self {
        Self {
            nodes: Vec::new(),
            queue_capacity: queue_capacity.max(1),
            tap: None,
            sent: 0,
        }
    }

    /// Attaches a node; it receives every frame sent from now on by anyone but itself.
    ///
    /// More than 65 536 nodes is a harness bug; the extra ones share the last id.
    pub fn attach(&mut self) -> NodeId {
        let id = NodeId(u16::try_from(self.nodes.len()).unwrap_or(u16::MAX));
        self.nodes.push(Node {
            queue: VecDeque::with_capacity(self.queue_capacity),
            dropped: 0,
        });
        id
    }

    #[cfg(test)]
    /// Number of attached nodes.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Puts `frame` on the bus at `now`, from `from`: every other node gets it.
    pub fn send(&mut self, from: NodeId, frame: CanFrame, now: Duration) {
        self.broadcast(Some(from), frame, now);
    }

    #[cfg(test)]
    /// Puts `frame` on the bus from outside any node (trace replay, fault injection):
    /// every node gets it.
    pub(crate) fn inject(&mut self, frame: CanFrame, now: Duration) {
        self.broadcast(None, frame, now);
    }

    fn broadcast(&mut self, from: Option<NodeId>, frame: CanFrame, now: Duration) {
        self.sent = self.sent.wrapping_add(1);
        if let Some(tap) = &mut self.tap {
            tap.push(TapRecord {
                at: now,
                from,
                frame,
            });
        }
        let skip = from.map(NodeId::index);
        let cap = self.queue_capacity;
        for (i, node) in self.nodes.iter_mut().enumerate() {
            if Some(i) == skip {
                continue;
            }
            // A node that does not read loses its oldest frames, as a socket buffer would.
            if node.queue.len() >= cap {
                node.queue.pop_front();
                node.dropped = node.dropped.saturating_add(1);
            }
            node.queue.push_back(Stamped { at: now, frame });
        }
    }

    /// The oldest frame queued for `node`, taken off its queue.
    pub fn recv(&mut self, node: NodeId) -> Option<Stamped> {
        self.nodes.get_mut(node.index())?.queue.pop_front()
    }

    /// The oldest frame queued for `node`, if it was sent at or before `now`, taken off.
    pub(crate) fn recv_until(&mut self, node: NodeId, now: Duration) -> Option<Stamped> {
        let queue = &mut self.nodes.get_mut(node.index())?.queue;
        if queue.front()?.at <= now {
            queue.pop_front()
        } else {
            None
        }
    }

    /// When the oldest frame queued for `node` was sent.
    pub(crate) fn next_at(&self, node: NodeId) -> Option<Duration> {
        self.nodes.get(node.index())?.queue.front().map(|s| s.at)
    }

    #[cfg(test)]
    /// Frames waiting in `node`'s queue.
    pub(crate) fn pending(&self, node: NodeId) -> usize {
        self.nodes.get(node.index()).map_or(0, |n| n.queue.len())
    }

    #[cfg(test)]
    /// Frames `node` lost because its queue was full.
    pub(crate) fn dropped(&self, node: NodeId) -> u64 {
        self.nodes.get(node.index()).map_or(0, |n| n.dropped)
    }

    /// Frames put on the bus so far (sent and injected).
    pub(crate) fn frames_sent(&self) -> u64 {
        self.sent
    }

    /// Starts recording every frame (clearing any earlier recording).
    pub fn start_tap(&mut self) {
        self.tap = Some(Vec::new());
    }

    /// Stops recording and hands back what was recorded.
    pub fn stop_tap(&mut self) -> Vec<TapRecord> {
        self.tap.take().unwrap_or_default()
    }

    #[cfg(test)]
    /// What the tap recorded so far (empty when it is off).
    pub(crate) fn tap(&self) -> &[TapRecord] {
        self.tap.as_deref().unwrap_or_default()
    }

    #[cfg(test)]
    /// Hands back what the tap recorded so far and keeps recording into the same buffer's
    /// successor; for streaming a long run to a trace file piece by piece.
    pub(crate) fn drain_tap(&mut self) -> Vec<TapRecord> {
        match &mut self.tap {
            Some(tap) => {
                let capacity = tap.capacity();
                core::mem::replace(tap, Vec::with_capacity(capacity))
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use embedded_can::Frame;

    fn frame(id: u32, byte: u8) -> CanFrame {
        CanFrame::from_raw(id, false, &[byte]).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A bus of queues of `capacity` frames with two nodes on it.
    fn two_nodes(capacity: usize) -> (VirtualBus, NodeId, NodeId) {
        let mut bus = VirtualBus::new(capacity);
        let (a, b) = (bus.attach(), bus.attach());
        (bus, a, b)
    }

    #[test]
    fn broadcast_skips_sender_and_keeps_order() {
        let mut bus = VirtualBus::new(8);
        let a = bus.attach();
        let b = bus.attach();
        let c = bus.attach();
        bus.send(a, frame(0x7DF, 1), ms(1));
        bus.send(b, frame(0x7E8, 2), ms(2));
        assert_eq!(bus.pending(a), 1, "a gets b's frame only");
        assert_eq!(bus.pending(b), 1, "b gets a's frame only");
        assert_eq!(bus.pending(c), 2);
        let first = bus.recv(c).unwrap();
        assert_eq!((first.at, first.frame.raw_id()), (ms(1), 0x7DF));
        let second = bus.recv(c).unwrap();
        assert_eq!((second.at, second.frame.data()), (ms(2), &[2u8][..]));
        assert!(bus.recv(c).is_none());
        assert_eq!(bus.recv(a).unwrap().frame.raw_id(), 0x7E8);
        assert_eq!(bus.frames_sent(), 2);
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let (mut bus, tx, slow) = two_nodes(3);
        for i in 0..5u8 {
            bus.send(tx, frame(0x100, i), ms(u64::from(i)));
        }
        assert_eq!(bus.dropped(slow), 2);
        assert_eq!(bus.pending(slow), 3);
        let left: Vec<u8> = core::iter::from_fn(|| bus.recv(slow))
            .map(|s| s.frame.data()[0])
            .collect();
        assert_eq!(left, [2, 3, 4], "the newest three survive");
        assert_eq!(bus.dropped(tx), 0);
    }

    #[test]
    fn recv_until_respects_stamps() {
        let (mut bus, tx, rx) = two_nodes(4);
        bus.send(tx, frame(0x100, 0), ms(10));
        assert_eq!(bus.next_at(rx), Some(ms(10)));
        assert!(bus.recv_until(rx, ms(9)).is_none());
        assert!(bus.recv_until(rx, ms(10)).is_some());
        assert_eq!(bus.next_at(rx), None);
    }

    #[test]
    fn inject_reaches_everyone_and_tap_records() {
        let (mut bus, a, b) = two_nodes(4);
        bus.send(a, frame(0x1, 0), ms(0));
        bus.start_tap();
        bus.inject(frame(0x2, 0), ms(5));
        bus.send(b, frame(0x3, 0), ms(6));
        assert_eq!((bus.pending(a), bus.pending(b)), (2, 2));
        let tap = bus.tap();
        assert_eq!(tap.len(), 2, "frames before start_tap are not recorded");
        assert_eq!(
            (tap[0].at, tap[0].from, tap[0].frame.raw_id()),
            (ms(5), None, 0x2)
        );
        assert_eq!(tap[1].from, Some(b));
        assert_eq!(bus.drain_tap().len(), 2);
        assert!(bus.tap().is_empty());
        bus.send(a, frame(0x4, 0), ms(7));
        assert_eq!(bus.stop_tap().len(), 1);
        bus.send(a, frame(0x5, 0), ms(8));
        assert!(bus.tap().is_empty(), "stopped");
    }

    #[test]
    fn unknown_node_is_harmless() {
        let mut bus = VirtualBus::new(2);
        let ghost = NodeId(9);
        assert!(bus.recv(ghost).is_none());
        assert_eq!(bus.pending(ghost), 0);
        bus.send(ghost, frame(0x1, 0), ms(0));
        assert_eq!(bus.node_count(), 0);
    }
}
