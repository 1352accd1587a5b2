//! What the trace fuzz targets share: a frame read from any format must be written in the
//! `candump -l` form and read back the same.

use rapport_agent::can::candump::{Line, Timestamp, TraceFrame, format_log_line, parse_line};

pub fn round_trip(f: &TraceFrame) {
    let ts = f
        .timestamp
        .unwrap_or(Timestamp::Relative(core::time::Duration::ZERO));
    let line = format_log_line(ts, f.interface.as_str(), &f.frame);
    match parse_line(line.as_bytes()) {
        Ok(Line::Frame(back)) => {
            assert_eq!(back.frame, f.frame, "{line}");
            assert_eq!(back.interface, f.interface, "{line}");
        }
        other => panic!("{line:?} written from a read frame does not parse back: {other:?}"),
    }
}
