//! The shutdown signal a daemon's `main` hands to its `run`: SIGINT or SIGTERM (systemd stops
//! a unit with SIGTERM).
//!
//! Owns: waiting for the signal. Does not own: what stopping means (each `run` stops its parts
//! in order).

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
