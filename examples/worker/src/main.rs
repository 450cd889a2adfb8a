//! `appforge-worker`: the generation job handlers in a process of their own, for split
//! deployments (API nodes with `APPFORGE_WORKERS=0`, worker nodes running this, all on one
//! database). It is assembled from the library crates alone: the generation service of the
//! `appforge` facade over the stores of one `DATABASE_URL`, the provider from
//! `appforge_llm::ProviderConfig`, reference images from `appforge-uploads`, each job's end as
//! an analytics event and, with `SENTRY_DSN`, its failure as an error report.
//!
//! | setting | default | |
//! | --- | --- | --- |
//! | `DATABASE_URL` | `sqlite://appforge.db` | the API's database |
//! | `APPFORGE_WORKERS` | `4` | job slots |
//! | `APPFORGE_SHUTDOWN_GRACE_SECS` | `30` | how long running jobs may finish on SIGTERM |
//! | `APPFORGE_STORAGE_URL` | `uploads/` beside the SQLite file | where the API keeps uploads |
//! | the provider's | the offline demo | `ANTHROPIC_API_KEY`, `OPENAI_BASE_URL`, `APPFORGE_MODEL`, ... |
//! | `APPFORGE_DEMO_PACE_MS` | `0` | spacing of the offline demo's events |
//! | `SENTRY_DSN`, `APPFORGE_LOG_FORMAT`, `RUST_LOG` | off, pretty, `info` | reports and logs |
//!
//! A bad setting exits with status 2, naming it. The process migrates the tables it uses,
//! settles what a stopped process left open (at start, then periodically), and on SIGTERM or
//! Ctrl-C stops claiming, lets running jobs finish for the grace period and releases the rest
//! for another worker. The upkeep (retention, purges, alerts) and billing's periodic pass run
//! in the API processes (`appforge-server`, or `appforge-server worker` for a worker that runs
//! them too).

// A command-line program: start-up failures go to stderr.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use appforge::analytics::{AnyEventStore, Recorder, ReportingConfig};
use appforge::apps::AnyAppStore;
use appforge::core::db::{Connect, Pool, beside_database};
use appforge::generation::reports::Reporting;
use appforge::generation::{GenerationService, UploadedImages, analytics};
use appforge::jobs::AnyJobStore;
use appforge::llm::ProviderConfig;
use appforge::quota::{AnyUsageStore, Quota};
use appforge::uploads::{AnyUploadStore, Storage, Uploads};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The worker's settings, checked before anything starts.
struct Settings {
    database_url: String,
    slots: u32,
    grace: Duration,
    storage_url: String,
    provider: ProviderConfig,
    demo_pace: Duration,
    reporting: ReportingConfig,
    json_logs: bool,
}

/// A setting's value or its default, parsed; the error names the variable.
fn setting<T: FromStr>(name: &str, default: &str) -> Result<T, String> {
    let value = std::env::var(name).unwrap_or_default();
    let value = if value.trim().is_empty() {
        default
    } else {
        value.trim()
    };
    value
        .parse()
        .map_err(|_| format!("invalid setting {name}: {value:?} is not a valid value"))
}

impl Settings {
    fn from_env() -> Result<Self, String> {
        let database_url: String = setting("DATABASE_URL", "sqlite://appforge.db")?;
        let storage = beside_database(&database_url, "uploads");
        let default_storage = format!("file://{}", storage.display());
        let reporting = ReportingConfig::from_lookup(
            concat!("appforge-worker@", env!("CARGO_PKG_VERSION")),
            |name| std::env::var(name).ok(),
        );
        // The DSN is parsed now rather than when reporting starts (the message omits it).
        reporting
            .client_options()
            .map_err(|e| format!("invalid setting SENTRY_DSN: {e}"))?;
        Ok(Self {
            slots: setting::<u32>("APPFORGE_WORKERS", "4")?.max(1),
            grace: Duration::from_secs(setting("APPFORGE_SHUTDOWN_GRACE_SECS", "30")?),
            storage_url: setting("APPFORGE_STORAGE_URL", &default_storage)?,
            provider: ProviderConfig::from_env().map_err(|e| format!("invalid setting {e}"))?,
            demo_pace: Duration::from_millis(setting("APPFORGE_DEMO_PACE_MS", "0")?),
            json_logs: setting::<String>("APPFORGE_LOG_FORMAT", "pretty")? == "json",
            reporting,
            database_url,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("appforge-worker: {error}");
            return ExitCode::from(2);
        }
    };
    // Logs on stderr; `error!` lines also go to Sentry, with warnings as breadcrumbs.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(appforge::analytics::tracing_layers());
    if settings.json_logs {
        registry.with(logs.json()).init();
    } else {
        registry.with(logs.compact()).init();
    }
    // Panics and failed jobs go to Sentry only with SENTRY_DSN; the guard sends what is
    // queued when it drops at exit.
    let _reporting = settings.reporting.init();
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "appforge-worker stopped");
            eprintln!("appforge-worker: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> Result<(), Error> {
    let pool = Connect::new(&settings.database_url).connect().await?;
    let (usage, jobs, apps, events, uploads) = match &pool {
        Pool::Sqlite(pool) => (
            AnyUsageStore::from_sqlite_pool(pool.clone()),
            AnyJobStore::from_sqlite_pool(pool.clone()),
            AnyAppStore::from_sqlite_pool(pool.clone()),
            AnyEventStore::from_sqlite_pool(pool.clone()),
            AnyUploadStore::from_sqlite_pool(pool.clone()),
        ),
        Pool::Postgres(pool) => (
            AnyUsageStore::from_pg_pool(pool.clone()),
            AnyJobStore::from_pg_pool(pool.clone()),
            AnyAppStore::from_pg_pool(pool.clone()),
            AnyEventStore::from_pg_pool(pool.clone()),
            AnyUploadStore::from_pg_pool(pool.clone()),
        ),
        _ => return Err("DATABASE_URL must name a SQLite file or a PostgreSQL database".into()),
    };
    usage.migrate().await?;
    jobs.migrate().await?;
    apps.migrate().await?;
    events.migrate().await?;
    uploads.migrate().await?;
    let quota = Quota::builder(usage).build()?;
    quota.load_plans().await?;

    let (pipelines, provider) = settings.provider.pipelines(settings.demo_pace)?;
    let model = settings.provider.model();
    let recorder = Recorder::builder(events).spawn()?;
    let reporting = Reporting::from_config(&settings.reporting)?;
    let images = Uploads::new(Storage::from_url(&settings.storage_url)?, uploads);
    let on_end = (recorder.clone(), reporting.clone());
    let service = GenerationService::builder(quota, jobs, apps, pipelines)
        .provider(provider.clone())
        .attachments(UploadedImages(images))
        .around_job(reporting.around_job())
        .on_job_end(move |job| {
            if let Some(event) = analytics::finished(job, &model) {
                on_end.0.record(event);
            }
            on_end.1.job_failed(job);
        })
        .build()?;

    let stop = CancellationToken::new();
    let reconciler = service.reconciler();
    reconciler.at_start().await;
    let reconciling = reconciler.spawn(stop.clone());
    let workers = service.start_workers(settings.slots)?;
    tracing::info!(worker = %workers.id(), slots = settings.slots, %provider, "worker running");

    shutdown_signal().await;
    let report = workers.shutdown(settings.grace).await;
    tracing::info!(?report, "worker stopped");
    stop.cancel();
    let _ = reconciling.await;
    service.flush_settlements(Duration::from_secs(5)).await;
    recorder.shutdown().await;
    reporting.flush(Duration::from_secs(2));
    pool.close().await;
    Ok(())
}

/// SIGTERM (the service manager) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
