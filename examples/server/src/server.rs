//! Running the server: state, in-process workers, the listener and graceful shutdown.

use std::future::Future;
use std::time::Duration;

use appforge_jobs::{AnyJobStore, WorkerPool};
use uuid::Uuid;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::reconcile::ReconcileReport;
use crate::routes::router;
use crate::state::{AppState, StartError};

/// The demo user a printed token acts for when no `APPFORGE_JWT_SECRET` is set.
pub const DEMO_USER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_00de_0000_0001);

/// Builds the state the settings describe: database, provider, token keys. Without a JWT
/// secret the keys are random and a demo token is returned with them.
///
/// # Errors
///
/// [`StartError`] when the provider, database or a crate's set-up fails.
pub async fn assemble(config: Config) -> Result<(AppState, Option<String>), StartError> {
    let (pipelines, provider) = crate::provider::pipelines(&config.provider, config.demo_pace)
        .map_err(|e| StartError::setup("provider", e))?;
    let (jwt, demo_token) = match &config.jwt_secret {
        Some(secret) => (JwtKeys::new(secret), None),
        None => {
            let keys = JwtKeys::random();
            let token = keys.issue(
                DEMO_USER,
                Some("demo@appforge.local"),
                Duration::from_secs(7 * 24 * 3600),
            );
            (keys, Some(token))
        }
    };
    let state = AppState::build(config, pipelines, provider, jwt).await?;
    reconcile(&state).await;
    Ok((state, demo_token))
}

/// Settles the reservations of jobs that finished while no process could settle them (a
/// crash between the job's last write and the settlement), releases expired ones, and purges
/// deleted apps past their retention. Commit and refund are idempotent, so settling again is
/// harmless; see [`crate::reconcile`].
pub async fn reconcile(state: &AppState) -> ReconcileReport {
    let report = crate::reconcile::reconcile_at_start(state).await;
    purge_apps(state).await;
    report
}

/// Removes the apps deleted longer than the retention period ago.
async fn purge_apps(state: &AppState) {
    match appforge_apps::AppStore::purge_deleted(state.apps()).await {
        Ok(0) => {}
        Ok(purged) => tracing::info!(purged, "purged deleted apps past their retention"),
        Err(error) => tracing::warn!(%error, "purging deleted apps failed"),
    }
}

/// Purges deleted apps every hour until the server shuts down.
fn spawn_purge(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        every.tick().await;
        loop {
            tokio::select! {
                () = state.shutdown_token().cancelled() => break,
                _ = every.tick() => purge_apps(&state).await,
            }
        }
    });
}

/// Runs the API (and `config.workers` in-process worker slots) until `shutdown` resolves,
/// then stops accepting, lets running jobs finish up to the grace period, releases the rest,
/// and flushes the analytics recorder and error reports.
///
/// # Errors
///
/// [`StartError`] or an I/O error binding the address.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let workers = start_workers(&state).map_err(std::io::Error::other)?;
    spawn_purge(&state);
    crate::reconcile::spawn(&state);
    let app = router(&state);
    let token = state.shutdown_token().clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // End the open SSE streams: the graceful shutdown waits for every connection.
            token.cancel();
        })
        .await?;
    if let Some(pool) = workers {
        let report = pool.shutdown(state.config().shutdown_grace).await;
        tracing::info!(?report, "workers stopped");
    }
    state.flush_settlements(Duration::from_secs(5)).await;
    finish(&state).await;
    Ok(())
}

/// The last steps of a graceful stop, after the workers: the analytics recorder writes what
/// it buffered (the job ends the workers just recorded included), queued error reports are
/// sent, and the database closes.
async fn finish(state: &AppState) {
    state.analytics().shutdown().await;
    let stats = state.analytics().stats();
    tracing::info!(
        written = stats.written,
        dropped = stats.dropped(),
        "analytics recorder stopped"
    );
    if !state.reporting().flush(Duration::from_secs(2)) {
        tracing::warn!("some error reports were not sent before exit");
    }
    state.db().close().await;
}

/// Starts the in-process workers, if the settings ask for any.
///
/// # Errors
///
/// The pool's configuration error.
pub fn start_workers(state: &AppState) -> appforge_jobs::Result<Option<WorkerPool<AnyJobStore>>> {
    let slots = u32::try_from(state.config().workers).unwrap_or(u32::MAX);
    if slots == 0 {
        return Ok(None);
    }
    crate::work::start(state, slots).map(Some)
}

/// Runs only the job handlers (no HTTP) until `shutdown` resolves: what `appforge-worker`
/// and `appforge-server worker` do. `config.workers` is the number of slots (at least 1).
///
/// # Errors
///
/// [`StartError`] when the state cannot be assembled or the pool not started.
pub async fn run_worker(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    let slots = u32::try_from(config.workers.max(1)).unwrap_or(u32::MAX);
    let (state, _) = assemble(config).await?;
    let pool = crate::work::start(&state, slots).map_err(|e| StartError::setup("workers", e))?;
    crate::reconcile::spawn(&state);
    tracing::info!(
        worker = %pool.id(),
        slots,
        provider = state.provider(),
        database = state.db().backend(),
        "worker running"
    );
    shutdown.await;
    let report = pool.shutdown(state.config().shutdown_grace).await;
    tracing::info!(?report, "worker stopped");
    state.flush_settlements(Duration::from_secs(5)).await;
    finish(&state).await;
    Ok(())
}
