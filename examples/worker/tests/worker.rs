//! The `appforge-worker` binary as a process, on the SQLite database it shares with the API
//! (the test enqueues through the queue, as the API does): it runs jobs, records their end in
//! analytics, two of them share the work, a bad setting stops it before it starts, and SIGTERM
//! stops it cleanly.

use std::process::Stdio;
use std::time::Duration;

use appforge_analytics::{AnyEventStore, EventStore, EventType};
use appforge_jobs::{AnyJobStore, Job, JobId, JobQueue, JobStatus, JobStore, NewJob};
use serde_json::json;
use tokio::process::{Child, Command};
use uuid::Uuid;

/// A running `appforge-worker`.
struct Worker {
    child: Child,
}

impl Worker {
    /// Starts the binary with `slots` job slots; `pace_ms` slows the offline demo's events.
    fn start(database: &str, slots: usize, pace_ms: u64) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_appforge-worker"))
            .env_clear()
            .env("DATABASE_URL", database)
            .env("APPFORGE_WORKERS", slots.to_string())
            .env("APPFORGE_SHUTDOWN_GRACE_SECS", "5")
            .env("APPFORGE_DEMO_PACE_MS", pace_ms.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the worker binary starts");
        Self { child }
    }

    /// Sends SIGTERM and waits for a clean exit.
    async fn terminate(mut self) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the worker exits after SIGTERM")
            .unwrap();
        assert!(exit.success(), "{exit:?}");
    }
}

/// The jobs table, migrated before any worker starts.
async fn queue(database: &str) -> JobQueue<AnyJobStore> {
    let store = AnyJobStore::connect(database).await.unwrap();
    store.migrate().await.unwrap();
    JobQueue::new(store)
}

/// A whole-app generation, as the API enqueues it (without a quota reservation).
async fn enqueue(queue: &JobQueue<AnyJobStore>, user: Uuid, prompt: &str) -> JobId {
    let payload = json!({ "prompt": prompt, "request": { "prompt": prompt } });
    queue
        .enqueue(NewJob::new("full_app", user, payload))
        .await
        .unwrap()
        .id
}

/// Polls the job until `done` holds (another process runs it: there is nothing to wait on).
async fn wait_for(
    queue: &JobQueue<AnyJobStore>,
    user: Uuid,
    id: JobId,
    done: impl Fn(&Job) -> bool,
) -> Job {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let job = queue.get(user, id).await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never got there: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `count` worker pools are registered (a pool registers once its process has
/// started).
async fn registered(queue: &JobQueue<AnyJobStore>, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while queue.store().workers().await.unwrap().len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} workers never registered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_worker_binary_runs_a_job_and_stops_on_sigterm() {
    let db = appforge_testing::TempSqlite::new();
    let queue = queue(&db.url()).await;
    let user = Uuid::new_v4();
    let id = enqueue(&queue, user, "a todo list").await;
    let worker = Worker::start(&db.url(), 1, 0);
    let job = wait_for(&queue, user, id, |j| j.status.is_terminal()).await;
    assert_eq!(job.status, JobStatus::Completed, "{job:?}");
    let result = job.result.unwrap();
    assert_eq!(result["provider"], "offline-demo");
    assert!(!result["files"].as_array().unwrap().is_empty(), "{result}");
    assert!(job.output_tokens.unwrap() > 0);
    worker.terminate().await;

    // The job's end is an analytics event in the shared database (flushed at shutdown).
    let events = AnyEventStore::connect(&db.url()).await.unwrap();
    let now = chrono::Utc::now();
    let recorded = events
        .events_between(now - chrono::Duration::hours(1), now)
        .await
        .unwrap();
    let completed: Vec<_> = recorded
        .iter()
        .filter(|e| e.event_type == EventType::GenerationCompleted && e.user_id == user)
        .collect();
    assert_eq!(completed.len(), 1, "{recorded:?}");
    let facts = completed[0].generation_facts();
    assert_eq!(facts.job_id, Some(id.into()));
    assert_eq!(facts.kind.as_deref(), Some("full_app"));
    assert_eq!(facts.model.as_deref(), Some("offline-demo"));
}

/// A setting that cannot be used stops the worker before it opens anything: status 2, the
/// variable named, the secret not repeated.
#[tokio::test]
async fn a_bad_setting_exits_2_naming_it() {
    let db = appforge_testing::TempSqlite::new();
    let key = ("ANTHROPIC_API_KEY", "sk-ant-never-printed");
    for (name, value, with) in [
        ("APPFORGE_WORKERS", "many", key),
        ("OPENAI_BASE_URL", "localhost:11434", ("RUST_LOG", "warn")),
        ("APPFORGE_MODEL", "claude-sonnet-4-5", key),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_appforge-worker"))
            .env_clear()
            .env("DATABASE_URL", db.url())
            .env(with.0, with.1)
            .env(name, value)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert!(!stderr.contains("sk-ant-never-printed"), "{stderr}");
    }
}

/// Two workers of one slot each: the second job is enqueued while the first runs, so only the
/// other worker can take it, and both run to completion, once each.
#[tokio::test]
async fn two_workers_both_complete_jobs() {
    let db = appforge_testing::TempSqlite::new();
    let queue = queue(&db.url()).await;
    // About a thousand events 3 ms apart: each job runs for seconds. One worker at a time:
    // the first applies the other crates' migrations (SQLite has no migration lock).
    let mut workers = Vec::new();
    for running in 1..=2 {
        workers.push(Worker::start(&db.url(), 1, 3));
        registered(&queue, running).await;
    }
    let (alice, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let first = enqueue(&queue, alice, "a habit tracker").await;
    wait_for(&queue, alice, first, |j| j.status == JobStatus::Processing).await;
    let second = enqueue(&queue, bob, "a landing page").await;
    let second = wait_for(&queue, bob, second, |j| j.status.is_terminal()).await;
    let first = wait_for(&queue, alice, first, |j| j.status.is_terminal()).await;
    for job in [&first, &second] {
        assert_eq!(
            (job.status, job.attempt),
            (JobStatus::Completed, 1),
            "{job:?}"
        );
    }
    // The second started before the first ended: with one slot each, on the other worker.
    assert!(
        second.started_at.unwrap() < first.completed_at.unwrap(),
        "the jobs did not overlap: {:?} .. {:?} and {:?} ..",
        first.started_at,
        first.completed_at,
        second.started_at
    );
    for worker in workers {
        worker.terminate().await;
    }
}
