//! The `appforge-server` binary: the API and in-process workers.

// A command-line program: the URL and the demo token go to stdout for the user to copy.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use appforge_server::{Config, server, shutdown, telemetry};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("appforge-server: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    // Error reports (and panics) go to Sentry only when SENTRY_DSN is set; the guard sends
    // what is queued when it drops at exit.
    let _reporting = match config.reporting.init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("appforge-server: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    // `appforge-server worker`: the job handlers only, as `appforge-worker` runs them.
    let outcome = if std::env::args().nth(1).as_deref() == Some("worker") {
        server::run_worker(config, shutdown::signal())
            .await
            .map_err(Into::into)
    } else {
        run(config).await
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "appforge-server stopped");
            eprintln!("appforge-server: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let addr = config.addr;
    let workers = config.workers;
    // The address first: a port in use stops the start before the database is touched.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on APPFORGE_ADDR {addr}: {e}"))?;
    let (state, demo_token) = server::assemble(config).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        %local,
        provider = state.provider(),
        database = state.db().backend(),
        workers,
        billing = state.billing().is_some(),
        "appforge-server listening"
    );
    if state.provider() == "offline-demo" {
        tracing::info!(
            "no ANTHROPIC_API_KEY or OPENAI_BASE_URL: generations replay the offline demo transcripts"
        );
    }
    println!("appforge-server listening on http://{local}");
    if let Some(token) = demo_token {
        println!(
            "APPFORGE_JWT_SECRET is not set: a random secret is in use; a token for the demo user:"
        );
        println!("export TOKEN={token}");
    }
    server::serve(state, listener, shutdown::signal()).await?;
    Ok(())
}
