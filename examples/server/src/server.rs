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
/// [`StartError`] when the provider, database or a crate's set-up fails, or when
/// `APPFORGE_ANONYMOUS_PLAN` names a plan the catalogue does not have.
pub async fn assemble(config: Config) -> Result<(AppState, Option<String>), StartError> {
    let (pipelines, provider) = config
        .provider
        .pipelines(config.demo_pace)
        .map_err(|e| StartError::setup("provider", e))?;
    let keys = |keys: JwtKeys| {
        keys.issuer(config.jwt_issuer.clone())
            .anonymous_plan(config.anonymous_plan.clone())
    };
    let (jwt, demo_token) = match &config.jwt_secret {
        Some(secret) => (keys(JwtKeys::new(secret)), None),
        None => {
            let keys = keys(JwtKeys::random());
            let token = keys.issue(
                DEMO_USER,
                Some("demo@appforge.local"),
                Duration::from_secs(7 * 24 * 3600),
            );
            (keys, Some(token))
        }
    };
    let state = AppState::build(config, pipelines, provider, jwt).await?;
    if let Some(plan) = &state.config().anonymous_plan
        && state.quota().catalogue().get(plan).is_none()
    {
        return Err(StartError::setup(
            "APPFORGE_ANONYMOUS_PLAN",
            format!("the plan catalogue has no plan {plan:?}"),
        ));
    }
    reconcile(&state).await;
    Ok((state, demo_token))
}

/// Settles the reservations of jobs that finished while no process could settle them (a
/// crash between the job's last write and the settlement), releases expired ones, then runs
/// one upkeep pass (finished jobs past their retention deleted, deleted apps past theirs
/// purged). Commit and refund are idempotent, so settling again is harmless; see
/// [`crate::reconcile`] and [`crate::maintenance`].
pub async fn reconcile(state: &AppState) -> ReconcileReport {
    let report = crate::reconcile::reconcile_at_start(state).await;
    crate::maintenance::run(state).await;
    report
}

/// Runs the API (and `config.workers` in-process worker slots) until `shutdown` resolves,
/// then stops accepting, lets running jobs finish up to the grace period, releases the rest,
/// and flushes the analytics recorder and error reports.
///
/// Connections are HTTP/1.1 with a header-read timeout, a keep-alive idle timeout and a cap
/// on open connections (`APPFORGE_HEADER_READ_TIMEOUT_SECS`, `APPFORGE_KEEP_ALIVE_SECS`,
/// `APPFORGE_MAX_CONNECTIONS`). With `APPFORGE_METRICS_ADDR` set, `/metrics` is served on
/// that address, with the same limits.
///
/// # Errors
///
/// [`StartError`] or an I/O error binding the metrics address.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let edge = &state.config().edge;
    let limits = crate::connections::Limits::new(edge, state.config().shutdown_grace);
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics_server = match edge.metrics_addr {
        Some(addr) => {
            let metrics_listener = tokio::net::TcpListener::bind(addr).await?;
            tracing::info!(addr = %metrics_listener.local_addr()?, "metrics served on their own address");
            Some(tokio::spawn(crate::connections::serve(
                metrics_listener,
                crate::routes::metrics_router(&state),
                limits,
                state.metrics().clone(),
                stop.clone().cancelled_owned(),
            )))
        }
        None => None,
    };
    // The router (and its layers) before the workers: nothing starts on settings that fail.
    let app = router(&state);
    let workers = start_workers(&state)
        .map_err(std::io::Error::other)?
        .map(std::sync::Arc::new);
    crate::maintenance::spawn(&state);
    crate::reconcile::spawn(&state);
    let token = state.shutdown_token().clone();
    let claiming = workers.clone();
    let stopping = stop.clone();
    crate::connections::serve(listener, app, limits, state.metrics().clone(), async move {
        shutdown.await;
        // The workers stop claiming before the HTTP drain: no job starts while the API
        // winds down (running ones go on, up to the grace period, below).
        if let Some(pool) = claiming {
            pool.stop_claiming();
            tracing::info!("workers stopped claiming; draining HTTP");
        }
        stopping.cancel();
        // End the open SSE streams: the drain waits for every connection.
        token.cancel();
    })
    .await;
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
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
    crate::maintenance::spawn(&state);
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
    // Ends the periodic tasks (upkeep, alerts, reconciliation).
    state.shutdown_token().cancel();
    tracing::info!(?report, "worker stopped");
    state.flush_settlements(Duration::from_secs(5)).await;
    finish(&state).await;
    Ok(())
}
