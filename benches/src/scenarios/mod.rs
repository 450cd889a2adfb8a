//! One module per scenario; [`Scenario`] lists them for the command line.

mod analytics_ingest;
mod noop;

use crate::report::Report;

/// A benchmark scenario and its flags.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Scenario {
    /// Does nothing N times: exercises the report contract.
    Noop(noop::Args),
    /// Records N analytics events through the recorder into SQLite or PostgreSQL.
    AnalyticsIngest(analytics_ingest::Args),
}

impl Scenario {
    /// Runs the scenario and returns its report.
    pub(crate) async fn run(self) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Self::Noop(args) => Ok(noop::run(&args)),
            Self::AnalyticsIngest(args) => analytics_ingest::run(args).await,
        }
    }
}
