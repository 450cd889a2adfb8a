//! One module per scenario; [`Scenario`] lists them for the command line.

mod analytics_ingest;
mod audit_append;
mod file_parse;
mod http_enqueue;
mod jobs;
mod metrics_scrape;
mod noop;
mod preview_build;
mod quota_reserve;
mod sse_decode;
mod webhook_e2e;
mod webhook_verify;

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
    /// Appends N audit entries to org chains (SHA-256 chain kept), then verifies them.
    AuditAppend(audit_append::Args),
    /// The demo apps bundled by appforge-preview (cold, warm and cached), beside esbuild and vite.
    PreviewBuild(preview_build::Args),
    /// Verifies and parses N signed copies of a Stripe event payload.
    WebhookVerify(webhook_verify::Args),
    /// Handles N distinct Stripe events end to end: verify, ledger, upsert, plan change.
    WebhookE2e(webhook_e2e::Args),
    /// Enqueues N no-op jobs in bulk, then drains them with a worker pool.
    JobsDrain(jobs::DrainArgs),
    /// Enqueues one job at a time into idle workers: latency from enqueue to handler start.
    JobsLatency(jobs::LatencyArgs),
    /// The server over a large queue: `/api/quota` latency alone, then under `/metrics` scrapers.
    MetricsScrape(metrics_scrape::Args),
    /// `POST /api/ai-builder/full-app` from many Free users over HTTP, beside `/healthz`.
    HttpEnqueue(http_enqueue::Args),
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
            Self::AuditAppend(args) => audit_append::run(&args).await,
            Self::PreviewBuild(args) => preview_build::run(&args).await,
            Self::WebhookVerify(args) => webhook_verify::run(&args),
            Self::WebhookE2e(args) => webhook_e2e::run(&args).await,
            Self::JobsDrain(args) => jobs::drain(&args).await,
            Self::JobsLatency(args) => jobs::latency(&args).await,
            Self::MetricsScrape(args) => metrics_scrape::run(&args).await,
            Self::HttpEnqueue(args) => http_enqueue::run(&args).await,
        }
    }
}

/// Creates `appforge_bench` next to `DATABASE_URL`'s database when missing; returns its URL.
pub(crate) async fn bench_database() -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    use sqlx::Connection;
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'appforge_bench')",
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        sqlx::query("CREATE DATABASE appforge_bench")
            .execute(&mut conn)
            .await?;
    }
    conn.close().await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path("appforge_bench");
    Ok(url.into())
}

/// Opens every connection of `pool` before a clock starts: connecting (the TLS handshake, and
/// in a new process the crypto library's one-time seeding, about 80 ms here) is start-up, not
/// the throughput being measured.
pub(crate) async fn open_all(pool: &sqlx::PgPool) -> Result<(), sqlx::Error> {
    let opened = futures::future::try_join_all(
        (0..pool.options().get_max_connections()).map(|_| pool.acquire()),
    )
    .await?;
    drop(opened);
    Ok(())
}
