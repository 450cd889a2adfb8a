//! `appforge-worker`: the server's generation job handlers in a process of their own, for
//! split deployments (API nodes with `APPFORGE_WORKERS=0`, worker nodes running this, all on
//! one PostgreSQL database).
//!
//! It reads the same settings as the server (`DATABASE_URL`, the provider, ...), checked before
//! it starts (a bad one exits with status 2, naming it); `APPFORGE_WORKERS` is its number of
//! job slots (default 4). Like every process it reconciles lost settlements, runs the upkeep
//! (job retention, purging deleted apps) and checks the queue for alerts. On SIGTERM or Ctrl-C
//! it stops claiming, lets running jobs finish for `APPFORGE_SHUTDOWN_GRACE_SECS` and releases
//! the rest for another worker. With `SENTRY_DSN` set, failed jobs and panics are reported to
//! Sentry.

// A command-line program: start-up failures go to stderr.
#![allow(clippy::print_stderr)]

use appforge_server::{Config, server, shutdown, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("appforge-worker: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    // Error reports (and panics) go to Sentry only when SENTRY_DSN is set; the guard sends
    // what is queued when it drops at exit.
    let _reporting = match config.reporting.init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("appforge-worker: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "appforge-worker stopped");
            eprintln!("appforge-worker: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    server::run_worker(config, shutdown::signal()).await?;
    Ok(())
}
