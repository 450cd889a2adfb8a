//! One module per scenario; [`Scenario`] lists them for the command line.

mod analytics_ingest;
mod file_parse;
mod jobs;
mod noop;
mod quota_reserve;
mod webhook_e2e;
mod webhook_verify;

use crate::report::Report;

/// A benchmark scenario and its flags.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Scenario {
    /// Does nothing N times: exercises the report contract.
    Noop(noop::Args),
    /// Reserve + commit pairs on a quota store; checks nothing is admitted over the limit.
    QuotaReserve(quota_reserve::Args),
    /// Verifies and parses N signed copies of a Stripe event payload.
    WebhookVerify(webhook_verify::Args),
    /// Handles N distinct Stripe events end to end: verify, ledger, upsert, plan change.
    WebhookE2e(webhook_e2e::Args),
    /// Parses a synthetic generation protocol stream delivered in small chunks.
    FileParse(file_parse::Args),
    /// Enqueues N no-op jobs in bulk, then drains them with a worker pool.
    JobsDrain(jobs::DrainArgs),
    /// Enqueues one job at a time into idle workers: latency from enqueue to handler start.
    JobsLatency(jobs::LatencyArgs),
    /// Records N analytics events through the recorder into SQLite or PostgreSQL.
    AnalyticsIngest(analytics_ingest::Args),
}

impl Scenario {
    /// Runs the scenario and returns its report.
    pub(crate) async fn run(self) -> Result<Report, Box<dyn std::error::Error + Send + Sync>> {
        match self {
            Self::Noop(args) => Ok(noop::run(&args)),
            Self::QuotaReserve(args) => quota_reserve::run(&args).await,
            Self::WebhookVerify(args) => webhook_verify::run(&args),
            Self::WebhookE2e(args) => webhook_e2e::run(&args).await,
            Self::FileParse(args) => Ok(file_parse::run(&args)),
            Self::JobsDrain(args) => jobs::drain(&args).await,
            Self::JobsLatency(args) => jobs::latency(&args).await,
            Self::AnalyticsIngest(args) => analytics_ingest::run(args).await,
        }
    }
}
