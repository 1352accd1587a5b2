//! Waiting with a deadline, and free loopback ports.
//!
//! The `wait_*` and `poll_until` helpers are assertions: they poll a condition and panic naming
//! what they waited for when the deadline passes, so a hang becomes a failing test with a
//! reason. [`holds_within`] is the same wait without the panic, for code that reports instead.
//! Owns no clock but the real one (`std` and tokio's, which a paused tokio clock moves).

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::Error;

/// How often the waits look.
const STEP: Duration = Duration::from_millis(10);
/// How often [`poll_until`] runs its (async, usually networked) condition.
const ASYNC_STEP: Duration = Duration::from_millis(20);

/// A port of 127.0.0.1 that was free a moment ago: bind port 0, read it, release it. Whoever
/// binds it next may lose a race with another process; the brokers retry on a fresh port.
///
/// # Errors
/// [`Error::Io`] if no socket can be bound.
pub fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| Error::Io {
            what: "binding",
            path: "127.0.0.1:0".into(),
            source,
        })
}

/// `127.0.0.1:<port>`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Blocks until something accepts connections on `addr`.
///
/// # Panics
/// After `within`, naming the address.
pub fn wait_port(addr: SocketAddr, within: Duration) {
    wait_for(within, &format!("a listener on {addr}"), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}

/// Blocks, polling `cond` every 10 ms, until it holds.
///
/// # Panics
/// After `within`: "timed out waiting for {what}".
pub fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(STEP);
    }
}

/// The async form of [`wait_for`] (tokio's clock and sleep).
///
/// # Panics
/// After `within`: "timed out waiting for {what}".
pub async fn wait_until(within: Duration, what: &str, cond: impl FnMut() -> bool) {
    assert!(
        holds_within(within, STEP, cond).await,
        "timed out waiting for {what}"
    );
}

/// Polls an async condition (an HTTP call, say) every 20 ms until it holds.
///
/// # Panics
/// After `within`: "timed out waiting for {what}".
pub async fn poll_until<F, Fut>(within: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(ASYNC_STEP).await;
    }
}

/// Polls `cond` every `step` until it holds (true) or `within` passes (false, after one last
/// look).
pub async fn holds_within(
    within: Duration,
    step: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return cond();
        }
        tokio::time::sleep(step).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_free_port_can_be_bound_and_waited_for() {
        let port = free_port().unwrap();
        let listener = TcpListener::bind(loopback(port)).unwrap();
        wait_port(loopback(port), Duration::from_secs(5));
        drop(listener);
    }

    #[test]
    #[should_panic(expected = "timed out waiting for nothing")]
    fn a_wait_that_runs_out_names_what_it_waited_for() {
        wait_for(Duration::from_millis(30), "nothing", || false);
    }

    #[tokio::test]
    async fn holds_within_reports_instead_of_panicking() {
        let mut n = 0;
        assert!(
            holds_within(Duration::from_secs(5), STEP, || {
                n += 1;
                n > 3
            })
            .await
        );
        assert!(!holds_within(Duration::from_millis(30), STEP, || false).await);
    }
}
