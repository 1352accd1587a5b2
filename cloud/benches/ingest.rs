//! Ingest throughput (placeholder).
fn main() {}
