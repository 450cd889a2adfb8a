//! `appforge-bench`: the appforge benchmark scenarios.
//!
//! ```text
//! cargo run --release -p appforge-benches --bin appforge-bench -- SCENARIO [--flag value ...]
//! ```
//!
//! Each scenario prints exactly one line of JSON on stdout with at least `scenario`, `ops`,
//! `seconds` and `ops_per_s`, plus fields of its own; progress and logs go to stderr.

mod report;
mod scenarios;

use clap::Parser;

/// The appforge benchmark scenarios; each prints one JSON line on stdout.
#[derive(Debug, Parser)]
#[command(name = "appforge-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    scenario: scenarios::Scenario,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(cli.scenario.run()) {
        Ok(report) => {
            report.print();
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("appforge-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
