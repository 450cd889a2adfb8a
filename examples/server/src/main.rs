//! The `appforge-server` binary: the API and in-process workers, and the `worker`, `migrate`
//! and `check-config` subcommands (`appforge-server --help`).

// A command-line program: the URL and the demo token go to stdout for the user to copy.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

use appforge_server::cli::{self, Command};
use appforge_server::{Config, server, shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let command = match Command::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("appforge-server: {error}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("{}", cli::version());
            return ExitCode::SUCCESS;
        }
        // Its report goes to stdout; no logging, no error reports.
        Command::CheckConfig => return check_config().await,
        _ => {}
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("appforge-server: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    if command == Command::Migrate {
        return migrate(config).await;
    }
    if let Command::PreviewCache { import } = &command {
        return preview_cache(&config, import.as_deref()).await;
    }
    // Error reports (and panics) go to Sentry only when SENTRY_DSN is set; the guard sends
    // what is queued when it drops at exit.
    let _reporting = match config.reporting.init() {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("appforge-server: {error}");
            return ExitCode::from(2);
        }
    };
    // `appforge-server worker`: the job handlers only, as `appforge-worker` runs them.
    let outcome = if command == Command::Worker {
        server::run_worker(config, shutdown::signal())
            .await
            .map_err(Into::into)
    } else {
        run(config).await
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "appforge-server stopped");
            eprintln!("appforge-server: {error}");
            ExitCode::FAILURE
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

/// `appforge-server migrate`: every crate's migrations, then exit.
async fn migrate(config: Config) -> ExitCode {
    match cli::migrate(config).await {
        Ok(backend) => {
            println!("appforge-server migrate: every crate's migrations are applied ({backend})");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("appforge-server migrate: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `appforge-server preview-cache [--import DIR]`: the packages stored, then exit.
async fn preview_cache(config: &Config, import: Option<&std::path::Path>) -> ExitCode {
    let mut report = String::new();
    let outcome = cli::preview_cache(config, import, &mut report).await;
    print!("{report}");
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("appforge-server preview-cache: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `appforge-server check-config`: the report on stdout, the problem found on stderr.
async fn check_config() -> ExitCode {
    let mut report = String::new();
    let outcome = cli::check_config(Config::from_env(), &mut report).await;
    print!("{report}");
    match outcome {
        Ok(()) => {
            println!("check-config: ok");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("appforge-server check-config: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
