//! What a daemon's `main` sets up around its `run`: the shutdown signal it hands in (SIGINT or
//! SIGTERM: systemd stops a unit with SIGTERM) and the log (structured lines on stderr, which
//! journald keeps).
//!
//! Owns: waiting for the signal, the log's format and filter. Does not own: what stopping
//! means (each `run` stops its parts in order), what is logged.

/// Logs to stderr, filtered by `RUST_LOG` (`info` when unset or unreadable). Call once, first
/// thing in `main`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
}

/// Resolves at the first SIGINT or SIGTERM, and logs it.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                // No SIGTERM handler could be installed: Ctrl-C still works.
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
