//! One module per scenario; [`Scenario`] lists them for the command line.

mod noop;
mod quota_reserve;

use crate::report::Report;

/// A benchmark scenario and its flags.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Scenario {
    /// Does nothing N times: exercises the report contract.
    Noop(noop::Args),
    /// Reserve + commit pairs on a quota store; checks nothing is admitted over the limit.
    QuotaReserve(quota_reserve::Args),
}

impl Scenario {
    /// Runs the scenario and returns its report.
    pub(crate) async fn run(self) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Self::Noop(args) => Ok(noop::run(&args)),
            Self::QuotaReserve(args) => quota_reserve::run(&args).await,
        }
    }
}
