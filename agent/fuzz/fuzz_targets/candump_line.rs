//! Fuzzes the candump line parser: any bytes must parse or fail cleanly, and every frame that
//! parses must survive a round trip through the `candump -l` writer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_agent::can::candump::{Line, Timestamp, TraceReader, format_log_line, parse_line};

fuzz_target!(|data: &[u8]| {
    if let Ok(Line::Frame(f)) = parse_line(data) {
        let ts = f
            .timestamp
            .unwrap_or(Timestamp::Relative(core::time::Duration::ZERO));
        let line = format_log_line(ts, f.interface.as_str(), &f.frame);
        match parse_line(line.as_bytes()) {
            Ok(Line::Frame(back)) => {
                assert_eq!(back.frame, f.frame, "{line}");
                assert_eq!(back.interface, f.interface, "{line}");
                assert_eq!(
                    back.timestamp.map(Timestamp::micros),
                    Some(ts.micros()),
                    "{line}"
                );
            }
            other => panic!("{line:?} written from a parsed frame does not parse back: {other:?}"),
        }
    }
    // The same bytes as a multi-line trace: the reader must end without panicking.
    let mut reader = TraceReader::new(data);
    for _ in reader.by_ref() {}
    let stats = reader.stats();
    assert_eq!(stats.lines, stats.frames + stats.skipped + stats.bad);
});
