//! Fuzzes the pcap/pcapng reader (the `pcap-file` parsers over our capped buffer, and the
//! SocketCAN packet decoder): any bytes must read to the end without panicking, and every frame
//! must survive a round trip through the `candump -l` writer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_agent::can::trace::{ChannelMap, pcap::PcapReader, pcap::socketcan_frame};

mod common;

fuzz_target!(|data: &[u8]| {
    let _ = socketcan_frame(data);
    let mut reader = PcapReader::new(data, ChannelMap::default());
    for item in reader.by_ref() {
        if let Ok(f) = item {
            common::round_trip(&f);
        }
    }
});
