//! Typed background jobs on SQLite: a job's arguments are a Rust type that names its kind
//! ([`JobArgs`]), the worker pool decodes them for its handler, and the queue keeps every job
//! (and its result) in one SQLite file, so jobs survive a restart.

use std::time::Duration;

use appforge_jobs::{Job, JobArgs, JobId, JobQueue, Outcome, SqliteJobStore, WorkerPool};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A job: count the words of a text.
#[derive(Debug, Serialize, Deserialize)]
pub struct CountWords {
    /// The text to count.
    pub text: String,
}

impl JobArgs for CountWords {
    const KIND: &'static str = "count_words";
}

/// Opens (creating it when missing) the queue in the SQLite file at `url`.
///
/// # Errors
///
/// The store's error when the file cannot be opened or migrated.
pub async fn open(url: &str) -> appforge_jobs::Result<JobQueue<SqliteJobStore>> {
    let store = SqliteJobStore::connect(url).await?;
    store.migrate().await?;
    Ok(JobQueue::new(store))
}

/// Starts a pool of two workers that count words.
///
/// # Errors
///
/// When the pool cannot start (no handler, a bad setting).
pub fn workers(
    queue: &JobQueue<SqliteJobStore>,
) -> appforge_jobs::Result<WorkerPool<SqliteJobStore>> {
    WorkerPool::builder(queue.clone())
        .concurrency(2)
        .handle::<CountWords>(|_ctx, args| async move {
            let words = args.text.split_whitespace().count();
            Outcome::success(serde_json::json!({ "words": words }))
        })
        .start()
}

/// Enqueues one job per text for `user` and returns their ids, in order.
///
/// # Errors
///
/// The store's error.
pub async fn enqueue_all(
    queue: &JobQueue<SqliteJobStore>,
    user: Uuid,
    texts: &[&str],
) -> appforge_jobs::Result<Vec<JobId>> {
    let mut ids = Vec::with_capacity(texts.len());
    for text in texts {
        let args = CountWords {
            text: (*text).to_owned(),
        };
        ids.push(queue.enqueue_args(user, &args).await?.id);
    }
    Ok(ids)
}

/// Waits until the job has ended (its event stream ends after the terminal event) and
/// returns it, with its result.
///
/// # Errors
///
/// The store's error, or not found when the job is not `user`'s.
pub async fn finished(
    queue: &JobQueue<SqliteJobStore>,
    user: Uuid,
    id: JobId,
) -> appforge_jobs::Result<Job> {
    let mut events = queue.subscribe(user, id).await?;
    while events.next().await.is_some() {}
    queue.get(user, id).await
}

/// How long [`WorkerPool::shutdown`] waits for running jobs.
pub const SHUTDOWN: Duration = Duration::from_secs(5);
