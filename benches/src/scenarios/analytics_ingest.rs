//! `analytics-ingest`: N events through `Recorder::record` into a real store.

use std::time::{Duration, Instant};

use appforge_analytics::{AnalyticsEvent, AnyEventStore, EventType, GenerationFacts, Recorder};

use crate::report::Report;

/// The store to write to.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Flags of the `analytics-ingest` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The store to write to.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// The database (default: a temporary SQLite file, or `DATABASE_URL` for PostgreSQL).
    #[arg(long)]
    database_url: Option<String>,
    /// How many events to record.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Concurrent tasks recording (as request handlers would).
    #[arg(long, default_value_t = 4)]
    producers: u64,
    /// The recorder's buffer capacity.
    #[arg(long, default_value_t = 10_000)]
    capacity: usize,
    /// The recorder's batch size.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(crate) async fn run(args: Args) -> Result<Report, BoxError> {
    let _dir;
    let url = match (args.backend, args.database_url) {
        (_, Some(url)) => url,
        (Backend::Sqlite, None) => {
            let dir = tempfile::tempdir()?;
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            _dir = dir;
            url
        }
        (Backend::Postgres, None) => std::env::var("DATABASE_URL")
            .map_err(|_| "postgres needs --database-url or DATABASE_URL")?,
    };
    let store = AnyEventStore::connect(&url).await?;
    store.migrate().await?;
    let recorder = Recorder::builder(store.clone())
        .capacity(args.capacity)
        .batch_size(args.batch_size)
        .spawn()?;

    let producers = args.producers.max(1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let recorder = recorder.clone();
        let share = args.events / producers + u64::from(p < args.events % producers);
        tasks.push(tokio::spawn(async move { produce(&recorder, share).await }));
    }
    let mut blocked: Vec<u64> = Vec::new();
    for task in tasks {
        blocked.extend(task.await?);
    }
    let recorded_in = start.elapsed();
    recorder.flush().await?;
    let written_in = start.elapsed();
    recorder.shutdown().await;

    blocked.sort_unstable();
    let at = |p: usize| {
        blocked
            .get((blocked.len() * p).div_ceil(100).max(1) - 1)
            .copied()
            .unwrap_or(0)
    };
    let stats = recorder.stats();
    let rate = |n: u64, d: Duration| {
        #[allow(clippy::cast_precision_loss)] // a rate
        let r = n as f64 / d.as_secs_f64().max(f64::MIN_POSITIVE);
        r
    };
    Ok(Report::new("analytics-ingest", args.events, written_in)
        .with("backend", store.backend())
        .with("producers", producers)
        .with("capacity", args.capacity)
        .with("batch_size", args.batch_size)
        .with("recorded", stats.recorded)
        .with("written", stats.written)
        .with("dropped", stats.dropped())
        .with("write_errors", stats.write_errors)
        .with("record_calls_per_s", rate(args.events, recorded_in))
        .with("recorded_per_s", rate(stats.recorded, recorded_in))
        .with("written_per_s", rate(stats.written, written_in))
        .with("record_p50_ns", at(50))
        .with("record_p99_ns", at(99))
        .with("record_max_ns", blocked.last().copied().unwrap_or(0)))
}

/// Records `n` events, yielding now and then as a request handler would between requests;
/// returns how long each `record` call took, in nanoseconds.
async fn produce(recorder: &Recorder, n: u64) -> Vec<u64> {
    let mut blocked = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    let facts = GenerationFacts::new("full_app", "pro")
        .duration_ms(1234)
        .usage("claude-sonnet-4-5", 1200, 3400, 0, 800);
    let properties = facts.to_properties();
    for i in 0..n {
        let user = uuid::Uuid::from_u128(u128::from(i % 1000));
        let event = AnalyticsEvent::new(user, EventType::GenerationCompleted, chrono::Utc::now())
            .with_properties(properties.clone());
        let before = Instant::now();
        recorder.record(event);
        let took = before.elapsed();
        blocked.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    blocked
}
