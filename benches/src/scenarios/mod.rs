//! One module per scenario; [`Scenario`] lists them for the command line.

mod jobs;
mod noop;

use crate::report::Report;

/// A benchmark scenario and its flags.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Scenario {
    /// Does nothing N times: exercises the report contract.
    Noop(noop::Args),
    /// Enqueues N no-op jobs in bulk, then drains them with a worker pool.
    JobsDrain(jobs::DrainArgs),
    /// Enqueues one job at a time into idle workers: latency from enqueue to handler start.
    JobsLatency(jobs::LatencyArgs),
}

impl Scenario {
    /// Runs the scenario and returns its report.
    pub(crate) async fn run(self) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Self::Noop(args) => Ok(noop::run(&args)),
            Self::JobsDrain(args) => jobs::drain(&args).await,
            Self::JobsLatency(args) => jobs::latency(&args).await,
        }
    }
}
