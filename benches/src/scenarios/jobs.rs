//! `jobs-drain` and `jobs-latency`: the appforge-jobs queue on memory, SQLite or PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use appforge_jobs::{
    AnyJobStore, JobId, JobQueue, JobStatus, JobStore, MemoryJobStore, NewJob, Outcome, PgJobStore,
    SqliteJobStore, WorkerPool,
};
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::{Notify, mpsc};

use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which store to measure.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Backend {
    Memory,
    Sqlite,
    Postgres,
}

/// Flags of `jobs-drain`.
#[derive(Debug, clap::Args)]
pub(crate) struct DrainArgs {
    #[arg(long, value_enum, default_value = "memory")]
    backend: Backend,
    /// PostgreSQL URL; default: a database `appforge_bench` next to `DATABASE_URL`'s.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 20_000)]
    jobs: u64,
    #[arg(long, default_value_t = 10)]
    concurrency: u32,
    /// Jobs each claim may take beyond the free slots (held locally under lease); the
    /// worker pool's default unless given, 0 for claims sized to the free slots.
    #[arg(long, default_value_t = appforge_jobs::DEFAULT_PREFETCH)]
    prefetch: u32,
    /// Completed jobs already in the store before the run (a queue that keeps its history):
    /// enqueued, claimed and completed through the store, untimed.
    #[arg(long, default_value_t = 0)]
    history: u64,
}

/// Flags of `jobs-latency`.
#[derive(Debug, clap::Args)]
pub(crate) struct LatencyArgs {
    #[arg(long, value_enum, default_value = "memory")]
    backend: Backend,
    /// PostgreSQL URL; default: a database `appforge_bench` next to `DATABASE_URL`'s.
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value_t = 1_000)]
    jobs: u64,
}

/// The store, and what keeps it alive (a temporary SQLite file).
async fn open(
    backend: Backend,
    url: Option<&str>,
) -> Result<(AnyJobStore, Box<dyn std::any::Any>), BoxError> {
    match backend {
        Backend::Memory => Ok((AnyJobStore::Memory(MemoryJobStore::new()), Box::new(()))),
        Backend::Sqlite => {
            let dir = tempfile::tempdir()?;
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            let store = SqliteJobStore::connect(&url).await?;
            store.migrate().await?;
            Ok((AnyJobStore::Sqlite(store), Box::new(dir)))
        }
        Backend::Postgres => {
            let url = match url {
                Some(url) => url.to_owned(),
                None => super::bench_database().await?,
            };
            let store = PgJobStore::connect(&url).await?;
            store.migrate().await?;
            sqlx::query("TRUNCATE generation_jobs, generation_job_workers")
                .execute(store.pool())
                .await?;
            super::open_all(store.pool()).await?;
            Ok((AnyJobStore::Postgres(store), Box::new(())))
        }
    }
}

/// Puts `n` completed jobs of kind `history` in the store the way a queue gets them: enqueued,
/// claimed and completed, a thousand at a time.
async fn fill_history(
    queue: &JobQueue<AnyJobStore>,
    store: &AnyJobStore,
    n: u64,
) -> Result<(), BoxError> {
    use appforge_jobs::{ClaimRequest, Finish, FinishRequest, WorkerId};

    let worker = WorkerId::new();
    let mut left = n;
    while left > 0 {
        let size = left.min(1_000);
        let batch: Vec<NewJob> = (0..size)
            .map(|i| {
                NewJob::new(
                    "history",
                    uuid::Uuid::from_u128(u128::from(i % 1_000)),
                    json!({}),
                )
            })
            .collect();
        queue.enqueue_many(batch).await?;
        let now = chrono::Utc::now();
        let claimed = store
            .claim(&ClaimRequest {
                worker,
                kinds: Some(vec!["history".into()]),
                limit: u32::try_from(size)?,
                now,
                lease_until: now + chrono::Duration::seconds(60),
                exclude_users: Vec::new(),
            })
            .await?;
        let finishes: Vec<FinishRequest> = claimed
            .iter()
            .filter_map(|job| {
                Some(FinishRequest {
                    lease: job.lease()?,
                    finish: Finish::Complete {
                        result: json!({}),
                        input_tokens: 10,
                        output_tokens: 10,
                    },
                    now,
                })
            })
            .collect();
        store.finish(&finishes).await?;
        left -= size;
    }
    Ok(())
}

fn noop_job(i: u64) -> NewJob {
    let user = uuid::Uuid::from_u64_pair(0, i % 100);
    NewJob::new("noop", user, json!(null)).priority(i16::try_from(i % 3 * 10).unwrap_or(0))
}

pub(crate) async fn drain(args: &DrainArgs) -> Result<Report, BoxError> {
    let (store, _guard) = open(args.backend, args.database_url.as_deref()).await?;
    let total = usize::try_from(args.jobs)?;
    let done = Arc::new(Notify::new());
    let finished = Arc::new(Mutex::new(0usize));
    let (d, f) = (Arc::clone(&done), Arc::clone(&finished));
    let queue = JobQueue::builder(store.clone())
        .on_terminal(move |_| {
            let mut n = f.lock();
            *n += 1;
            if *n == total {
                d.notify_one();
            }
        })
        .build()?;

    fill_history(&queue, &store, args.history).await?;

    let start = Instant::now();
    let mut ids = Vec::with_capacity(total);
    let jobs: Vec<NewJob> = (0..args.jobs).map(noop_job).collect();
    for chunk in jobs.chunks(10_000) {
        ids.extend(
            queue
                .enqueue_many(chunk.to_vec())
                .await?
                .into_iter()
                .map(|e| e.id),
        );
    }
    let enqueue_s = start.elapsed().as_secs_f64();

    let runs: Arc<Mutex<HashMap<JobId, u32>>> = Arc::new(Mutex::new(HashMap::with_capacity(total)));
    let r = Arc::clone(&runs);
    let start = Instant::now();
    let workers = WorkerPool::builder(queue.clone())
        .concurrency(args.concurrency)
        .prefetch(args.prefetch)
        .handler("noop", move |ctx| {
            *r.lock().entry(ctx.job().id).or_default() += 1;
            async { Outcome::success(json!(null)) }
        })
        .start()?;
    tokio::time::timeout(Duration::from_secs(600), done.notified()).await?;
    let elapsed = start.elapsed();
    workers.shutdown(Duration::from_secs(10)).await;

    let (duplicated, mut lost) = {
        let runs = runs.lock();
        let duplicated: u64 = runs.values().map(|n| u64::from(n - 1)).sum();
        let lost = ids.iter().filter(|id| !runs.contains_key(id)).count();
        (duplicated, u64::try_from(lost)?)
    };
    let completed = queue
        .stats()
        .await?
        .count(JobStatus::Completed)
        .saturating_sub(args.history);
    lost += args.jobs.saturating_sub(completed);
    if lost != 0 || duplicated != 0 {
        return Err(format!("lost {lost}, duplicated {duplicated}").into());
    }
    #[allow(clippy::cast_precision_loss)]
    let enqueue_per_s = args.jobs as f64 / enqueue_s;
    Ok(Report::new("jobs-drain", args.jobs, elapsed)
        .with("backend", format!("{:?}", args.backend).to_lowercase())
        .with("concurrency", args.concurrency)
        .with("prefetch", args.prefetch)
        .with("enqueue_s", enqueue_s)
        .with("enqueue_per_s", enqueue_per_s)
        .with("drain_s", elapsed.as_secs_f64())
        .with("completed_rows_kept", completed + args.history)
        .with("history", args.history)
        .with("lost", lost)
        .with("duplicated", duplicated))
}

pub(crate) async fn latency(args: &LatencyArgs) -> Result<Report, BoxError> {
    let (store, _guard) = open(args.backend, args.database_url.as_deref()).await?;
    let finished = Arc::new(Notify::new());
    let f = Arc::clone(&finished);
    let queue = JobQueue::builder(store)
        .on_terminal(move |_| f.notify_one())
        .build()?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let workers = WorkerPool::builder(queue.clone())
        .concurrency(10)
        .handler("noop", move |_| {
            let _ = tx.send(Instant::now());
            async { Outcome::success(json!(null)) }
        })
        .start()?;
    // Let the pool reach its idle wait.
    warm_up(&queue, &finished, &mut rx).await?;
    let mut latencies = Vec::with_capacity(usize::try_from(args.jobs)?);
    let start = Instant::now();
    for i in 0..args.jobs {
        let t0 = Instant::now();
        queue.enqueue(noop_job(i)).await?;
        let started = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await?
            .ok_or("worker stopped")?;
        latencies.push(started.saturating_duration_since(t0));
        tokio::time::timeout(Duration::from_secs(30), finished.notified()).await?;
    }
    let elapsed = start.elapsed();
    workers.shutdown(Duration::from_secs(10)).await;
    latencies.sort_unstable();
    let at =
        |p: usize| latencies[(latencies.len() * p).div_ceil(100).max(1) - 1].as_secs_f64() * 1000.0;
    Ok(Report::new("jobs-latency", args.jobs, elapsed)
        .with("backend", format!("{:?}", args.backend).to_lowercase())
        .with("p50_ms", at(50))
        .with("p99_ms", at(99))
        .with(
            "max_ms",
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        ))
}

async fn warm_up<S: JobStore>(
    queue: &JobQueue<S>,
    finished: &Notify,
    rx: &mut mpsc::UnboundedReceiver<Instant>,
) -> Result<(), BoxError> {
    queue.enqueue(noop_job(0)).await?;
    rx.recv().await.ok_or("worker stopped")?;
    tokio::time::timeout(Duration::from_secs(30), finished.notified()).await?;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
