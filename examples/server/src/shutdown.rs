//! Graceful shutdown. On SIGTERM or Ctrl-C, in this order:
//!
//! 1. the in-process workers stop claiming jobs (a job that starts now would only be cut
//!    short or given back);
//! 2. the HTTP listener closes and open connections drain: requests in flight are answered,
//!    event streams end;
//! 3. running jobs finish, up to `APPFORGE_SHUTDOWN_GRACE_SECS`, and the rest are given back
//!    to the queue for another worker;
//! 4. quota settlements, the analytics recorder and error reports are flushed.
//!
//! A worker process (`appforge-worker`) has no HTTP: it stops claiming, then waits for its
//! running jobs the same way. See [`crate::server::serve`] and [`crate::server::run_worker`].

/// Resolves on SIGTERM or Ctrl-C.
pub async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received: shutting down"),
        () = terminate => tracing::info!("SIGTERM received: shutting down"),
    }
}
