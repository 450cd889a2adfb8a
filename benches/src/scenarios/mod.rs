//! One module per scenario; [`Scenario`] lists them for the command line.

mod file_parse;
mod analytics_ingest;
mod noop;
mod sse_decode;
mod quota_reserve;

use crate::report::Report;

/// A benchmark scenario and its flags.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Scenario {
    /// Does nothing N times: exercises the report contract.
    Noop(noop::Args),
    /// Parses a synthetic generation protocol stream delivered in small chunks.
    FileParse(file_parse::Args),
    /// Streams a Messages API response through the appforge-llm client, counting events.
    SseDecode(sse_decode::Args),
    /// Reserve + commit pairs on a quota store; checks nothing is admitted over the limit.
    QuotaReserve(quota_reserve::Args),
    /// Records N analytics events through the recorder into SQLite or PostgreSQL.
    AnalyticsIngest(analytics_ingest::Args),
}

impl Scenario {
    /// Runs the scenario and returns its report.
    pub(crate) async fn run(self) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Self::Noop(args) => Ok(noop::run(&args)),
            Self::FileParse(args) => Ok(file_parse::run(&args)),
            Self::SseDecode(args) => sse_decode::run(&args).await,
            Self::QuotaReserve(args) => quota_reserve::run(&args).await,
            Self::AnalyticsIngest(args) => analytics_ingest::run(args).await,
        }
    }
}
