//! `appforge-generate`: generate an app from a prompt, streaming progress to the terminal.
//!
//! ```text
//! cargo run --release -p appforge-generate -- "a habit tracker with streaks" --out habit-tracker
//! ```
//!
//! The provider comes from the same settings as the server (`ANTHROPIC_API_KEY`,
//! `OPENAI_BASE_URL`, `APPFORGE_MODEL`, ...: [`appforge_llm::settings`]); with none, the
//! offline demo transcripts play, no key needed.

// A command-line program: progress goes to stdout, problems to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod write;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use appforge_llm::{FullAppRequest, Progress, ProviderConfig};
use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Generate an app from a prompt.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// What to build.
    prompt: String,
    /// Where to write the app's files (created if missing).
    #[arg(long, default_value = "generated-app")]
    out: PathBuf,
    /// With the offline demo: delay between streamed events, in milliseconds (0 = instant).
    #[arg(long, default_value_t = 2)]
    pace_ms: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let provider = match ProviderConfig::from_env() {
        Ok(provider) => provider,
        Err(error) => {
            eprintln!("appforge-generate: invalid setting {error}");
            return ExitCode::from(2);
        }
    };
    if matches!(provider, ProviderConfig::OfflineDemo) {
        println!("No ANTHROPIC_API_KEY or OPENAI_BASE_URL: replaying the offline demo generation.");
    }
    let pipelines = match provider.pipelines(Duration::from_millis(args.pace_ms)) {
        Ok((pipelines, name)) => {
            println!("Generating with {name}.");
            pipelines
        }
        Err(error) => {
            eprintln!("appforge-generate: {error}");
            return ExitCode::FAILURE;
        }
    };
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let started = Instant::now();
    let mut files = 0usize;
    let mut tokens = 0u64;
    let report = |progress: Progress| match progress {
        Progress::FileStarted { path } => {
            print!("  writing {path} ...");
            let _ = std::io::stdout().flush();
        }
        Progress::FileCompleted { bytes, .. } => {
            files += 1;
            println!(
                " {bytes} bytes  [{files} files, {tokens} tokens, {:.1}s]",
                started.elapsed().as_secs_f64()
            );
        }
        Progress::Usage { usage } => tokens = usage.output_tokens,
        Progress::Warning { warning } => println!("  warning: {warning:?}"),
        _ => {}
    };
    let app = match pipelines
        .full_app(&FullAppRequest::new(args.prompt.clone()), report, &cancel)
        .await
    {
        Ok(app) => app,
        Err(error) => {
            eprintln!("appforge-generate: generation failed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut refused = 0usize;
    for file in &app.files {
        if let Err(error) = write::write_under(&args.out, &file.path, &file.content) {
            refused += 1;
            eprintln!("  {}: {error}", file.path);
        }
    }
    println!(
        "\n{} — {} files in {} ({} input + {} output tokens, {:.1}s){}",
        app.name,
        app.files.len() - refused,
        args.out.display(),
        app.usage.input_tokens,
        app.usage.output_tokens,
        started.elapsed().as_secs_f64(),
        if refused > 0 {
            format!(", {refused} refused")
        } else {
            String::new()
        }
    );
    // The project files the model left out (package.json, tsconfig.json, ...), so that the
    // folder installs and builds with the commands printed below.
    let scaffold = appforge_llm::protocol::scaffold(&app.name, &app.files, &app.dependencies);
    for file in &scaffold.files {
        if let Err(error) = write::write_under(&args.out, &file.path, &file.content) {
            refused += 1;
            eprintln!("  {}: {error}", file.path);
        }
    }
    if !scaffold.files.is_empty() {
        println!("Added project files: {}", scaffold.paths().join(", "));
    }
    for dependency in &scaffold.refused {
        eprintln!(
            "  dependency {} {:?} left out of package.json: {}",
            dependency.name, dependency.version, dependency.reason
        );
    }
    if let Some(setup) = &app.setup_instructions {
        println!("\nNotes from the generation:\n{setup}");
    }
    println!("\nRun it:\n  cd {}", args.out.display());
    for command in &scaffold.commands {
        println!("  {command}");
    }
    if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
