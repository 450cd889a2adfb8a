//! `metrics-scrape`: the example server over a large queue, `/api/quota` latency measured
//! alone and then while scrapers hammer `/metrics`. The queue gauges are cached
//! (`APPFORGE_METRICS_REFRESH_SECS`), so the scrapes cost one queue aggregate per interval
//! and the quota reads keep their latency.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use appforge_jobs::NewJob;
use appforge_server::{AppState, Config, server};
use parking_lot::Mutex;
use serde_json::json;

use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const METRICS_TOKEN: &str = "bench-metrics-token";
const JWT_SECRET: &str = "bench-secret-of-at-least-thirty-two-bytes-0123";

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Flags of the `metrics-scrape` scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL URL, used as it is; default: the `appforge_bench` database next to
    /// `DATABASE_URL`'s, its jobs table emptied first.
    #[arg(long)]
    database_url: Option<String>,
    /// Pending jobs in the queue (enqueued before the clock starts).
    #[arg(long, default_value_t = 1_000_000)]
    jobs: u64,
    /// Concurrent `/metrics` scrapers.
    #[arg(long, default_value_t = 32)]
    scrapers: usize,
    /// Concurrent `/api/quota` clients (one user each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds of each phase (quota alone, quota under scrapes).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// `APPFORGE_METRICS_REFRESH_SECS` of the server.
    #[arg(long, default_value_t = 5.0)]
    refresh_secs: f64,
}

/// The server's database URL, and what keeps a SQLite file alive.
async fn database(args: &Args) -> Result<(String, Option<tempfile::TempDir>, bool), BoxError> {
    database_for(args.backend, args.database_url.as_deref()).await
}

/// The database URL of a server on `backend` (`url` as it is, else the bench database or a
/// temporary SQLite file), what keeps a SQLite file alive, and whether the bench database is
/// to be emptied.
pub(crate) async fn database_for(
    backend: Backend,
    url: Option<&str>,
) -> Result<(String, Option<tempfile::TempDir>, bool), BoxError> {
    Ok(match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            (url, Some(dir), false)
        }
        Backend::Postgres => match url {
            Some(url) => (url.to_owned(), None, false),
            None => (super::bench_database().await?, None, true),
        },
    })
}

/// Enqueues `n` pending jobs spread over a thousand users and the three priorities.
async fn fill(state: &AppState, n: u64) -> Result<(), BoxError> {
    let mut left = n;
    let mut next = 0u64;
    while left > 0 {
        let size = left.min(1_000);
        let batch: Vec<NewJob> = (next..next + size)
            .map(|i| {
                let priority = i16::try_from(i % 3).unwrap_or(0) * 10;
                NewJob::new(
                    "full_app",
                    uuid::Uuid::from_u128(u128::from(i % 1_000)),
                    json!({ "prompt": "bench" }),
                )
                .priority(priority)
            })
            .collect();
        state.queue().enqueue_many(batch).await?;
        next += size;
        left -= size;
    }
    Ok(())
}

/// The `q` quantile of `samples`, in milliseconds.
pub(crate) fn quantile_ms(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )] // an index into a non-empty slice
    let at = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[at].as_secs_f64() * 1_000.0
}

/// Runs `clients` quota readers (and `scrapers` scrapers) for `seconds`: the quota
/// latencies, the number of scrapes, and the last scrape's text.
async fn phase(
    base: &str,
    tokens: &[String],
    scrapers: usize,
    seconds: f64,
) -> Result<(Vec<Duration>, u64, String), BoxError> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let last = Arc::new(Mutex::new((0u64, String::new())));
    let mut tasks = Vec::new();
    for token in tokens {
        let (client, latencies) = (client.clone(), latencies.clone());
        let (url, token) = (format!("{base}/api/quota"), token.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let started = Instant::now();
                let answer = client.get(&url).bearer_auth(&token).send().await?;
                answer.error_for_status()?.bytes().await?;
                latencies.lock().push(started.elapsed());
            }
            Ok::<_, reqwest::Error>(())
        }));
    }
    for _ in 0..scrapers {
        let (client, last) = (client.clone(), last.clone());
        let url = format!("{base}/metrics");
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let answer = client.get(&url).bearer_auth(METRICS_TOKEN).send().await?;
                let text = answer.error_for_status()?.text().await?;
                let mut last = last.lock();
                last.0 += 1;
                last.1 = text;
            }
            Ok::<_, reqwest::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let latencies = std::mem::take(&mut *latencies.lock());
    let (scrapes, text) = std::mem::take(&mut *last.lock());
    Ok((latencies, scrapes, text))
}

/// The value of an unlabelled counter or gauge in a Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

pub(crate) async fn run(args: &Args) -> Result<Report, BoxError> {
    let (url, _dir, fresh) = database(args).await?;
    let settings: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", url),
        ("APPFORGE_WORKERS", "0".to_owned()),
        ("APPFORGE_JWT_SECRET", JWT_SECRET.to_owned()),
        ("APPFORGE_METRICS_TOKEN", METRICS_TOKEN.to_owned()),
        (
            "APPFORGE_METRICS_REFRESH_SECS",
            args.refresh_secs.to_string(),
        ),
        // The quota readers are not to be rate-limited: their latency is what is measured.
        (
            "APPFORGE_REQUEST_RATES",
            "*=100000000/100000000,free=100000000/100000000".to_owned(),
        ),
    ]);
    let config = Config::from_lookup(|name| settings.get(name).cloned())?;
    let (state, _) = server::assemble(config).await?;
    if fresh && let appforge_server::Database::Postgres(pool) = state.db() {
        sqlx::query("TRUNCATE generation_jobs")
            .execute(pool)
            .await?;
    }
    eprintln!("metrics-scrape: enqueueing {} jobs", args.jobs);
    fill(&state, args.jobs).await?;
    let tokens: Vec<String> = (0..args.clients.max(1))
        .map(|_| {
            state
                .jwt()
                .issue(uuid::Uuid::new_v4(), None, Duration::from_secs(3600))
        })
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(state, listener, async move {
        let _ = stopped.await;
    }));

    eprintln!("metrics-scrape: quota alone for {} s", args.seconds);
    let (mut alone, _, _) = phase(&base, &tokens, 0, args.seconds).await?;
    eprintln!(
        "metrics-scrape: quota under {} scrapers for {} s",
        args.scrapers, args.seconds
    );
    let started = Instant::now();
    let (mut scraped, scrapes, text) = phase(&base, &tokens, args.scrapers, args.seconds).await?;
    let elapsed = started.elapsed();
    let _ = stop.send(());
    serving.await??;

    let refreshes = metric(&text, "appforge_queue_stats_refreshes_total").unwrap_or(0.0);
    let depth = metric(&text, "appforge_queue_depth").unwrap_or(0.0);
    Ok(Report::new(
        "metrics-scrape",
        u64::try_from(scraped.len()).unwrap_or(u64::MAX),
        elapsed,
    )
    .with(
        "backend",
        match args.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
    )
    .with("jobs", args.jobs)
    .with("queue_depth", depth)
    .with("scrapers", args.scrapers)
    .with("clients", tokens.len())
    .with("scrapes", scrapes)
    .with("stats_refreshes", refreshes)
    .with("refresh_secs", args.refresh_secs)
    .with("quota_alone_p50_ms", quantile_ms(&mut alone, 0.5))
    .with("quota_alone_p99_ms", quantile_ms(&mut alone, 0.99))
    .with("quota_scraped_p50_ms", quantile_ms(&mut scraped, 0.5))
    .with("quota_scraped_p99_ms", quantile_ms(&mut scraped, 0.99)))
}
