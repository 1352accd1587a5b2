//! What the ISO-TP tests share: times in milliseconds, the unpadded configuration and the
//! counting payloads of python-can-isotp's tests.

use core::time::Duration;

use super::Config;

/// `n` milliseconds.
pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The default configuration without padding.
pub(super) fn unpadded() -> Config {
    Config {
        padding: None,
        ..Config::default()
    }
}

/// `make_payload(n, start)`: bytes start, start+1, ... mod 256.
pub(super) fn make_payload(n: usize, start: u8) -> Vec<u8> {
    (0..n).map(|i| start.wrapping_add(i as u8)).collect()
}
