//! The daemons' log (the agent's and the cloud's binaries): human-readable lines on stderr,
//! which journald keeps (colours only when stderr is a terminal), filtered by `RUST_LOG` (`info` when it is unset or unreadable).
//!
//! The filter is tracing-subscriber's `Targets` — `warn`, `rapport_agent=debug,info` — not its
//! `EnvFilter`: the span and field filters `EnvFilter` adds (`[span]`, `{field}`) are never needed
//! on a head unit and are not understood here, and its regular-expression engine was about
//! 0.2 MB of the head unit's binary (see docs/performance.md, "The head unit"); this crate
//! therefore takes tracing-subscriber without its `env-filter` feature.
//!
//! Owns: the subscriber's set-up. Does not own: what is logged.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter `RUST_LOG` names, or `info`; the error says why `RUST_LOG` was not used.
fn filter(value: Option<&str>) -> (Targets, Option<String>) {
    let info = || Targets::new().with_default(tracing::Level::INFO);
    match value {
        None => (info(), None),
        Some(v) => match v.parse::<Targets>() {
            Ok(t) => (t, None),
            Err(e) => (
                info(),
                Some(format!("RUST_LOG={v:?} not used ({e}): logging at info")),
            ),
        },
    }
}

/// Installs the log for the process (once; later calls do nothing).
pub fn init() {
    let value = std::env::var("RUST_LOG").ok();
    let (targets, problem) = filter(value.as_deref());
    let installed = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a terminal: a log file or journald gets plain text.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(targets)
        .try_init()
        .is_ok();
    if let (true, Some(problem)) = (installed, problem) {
        tracing::warn!("{problem}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_forms() {
        let (t, p) = filter(None);
        assert!(t.would_enable("rapport_agent::runtime", &Level::INFO));
        assert!(!t.would_enable("rapport_agent::runtime", &Level::DEBUG));
        assert!(p.is_none());
        let (t, p) = filter(Some("rapport_agent=debug,warn"));
        assert!(t.would_enable("rapport_agent::runtime::bus", &Level::DEBUG));
        assert!(!t.would_enable("sled", &Level::INFO));
        assert!(p.is_none());
        let (t, p) = filter(Some("off"));
        assert!(!t.would_enable("rapport_agent", &Level::ERROR));
        assert!(p.is_none());
        // Not a level: refused, said so, and the log stays at info.
        let (t, p) = filter(Some("rapport_agent=loud"));
        assert!(t.would_enable("rapport_agent", &Level::INFO));
        assert!(p.unwrap().contains("not used"), "the warning says why");
    }
}
