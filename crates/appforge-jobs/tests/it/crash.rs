//! Crash and fault tests with real worker processes: this test binary re-executes itself as
//! the worker child (`crash::child_worker`, selected by environment variables). Real time is
//! used here because processes are involved; every wait is bounded.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[cfg(feature = "postgres")]
use appforge_jobs::JobEventKind;
use appforge_jobs::{
    AnyJobStore, JobFilter, JobId, JobQueue, JobStatus, JobStore, NewJob, Outcome, PageRequest,
    Progress, WorkerPool,
};
#[cfg(feature = "postgres")]
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

const CHILD_URL: &str = "APPFORGE_JOBS_CHILD_URL";
const CHILD_LEASE_MS: &str = "APPFORGE_JOBS_CHILD_LEASE_MS";
const CHILD_PREFETCH: &str = "APPFORGE_JOBS_CHILD_PREFETCH";
const BOUND: Duration = Duration::from_secs(20);

/// The worker child: runs a pool until killed. Skipped in normal runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the worker child of the crash tests, started by them as a separate process"]
async fn child_worker() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let lease = Duration::from_millis(
        std::env::var(CHILD_LEASE_MS)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
    );
    let prefetch = std::env::var(CHILD_PREFETCH)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(appforge_jobs::DEFAULT_PREFETCH);
    let store = AnyJobStore::connect(&url).await.unwrap();
    let runs = Runs::of(&store);
    let queue = JobQueue::new(store);
    let _pool = WorkerPool::builder(queue)
        .concurrency(4)
        .prefetch(prefetch)
        .lease(lease)
        .heartbeat(lease / 5)
        .rescue_interval(lease / 5)
        .poll_interval(Duration::from_millis(50))
        .handler("work", move |ctx| {
            let runs = runs.clone();
            async move { work(ctx, runs, Process::Child).await }
        })
        .start()
        .unwrap();
    std::future::pending::<()>().await;
}

/// Which process runs a handler.
#[derive(Clone, Copy, PartialEq)]
enum Process {
    /// A worker child, killed by the test.
    Child,
    /// The test process itself.
    Test,
}

/// The handler of every process: records the run, works a little, reports progress. A job
/// with `"hold_in_child": true` never finishes in a child: the child holds it until killed.
async fn work(ctx: appforge_jobs::JobContext, runs: Runs, process: Process) -> Outcome {
    runs.record(ctx.job().id).await;
    if process == Process::Child && ctx.payload()["hold_in_child"] == json!(true) {
        std::future::pending::<()>().await;
    }
    let ms = ctx.payload()["work_ms"].as_u64().unwrap_or(20);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if ctx.payload()["progress"] == json!(true) {
        ctx.progress(Progress::Message {
            text: "halfway".into(),
        })
        .await
        .ok();
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if ctx.payload()["wait_for_cancel"] == json!(true) {
        ctx.cancellation().cancelled().await;
        return Outcome::retry("stopped");
    }
    Outcome::success(json!({ "pid": std::process::id() }))
}

/// A side table of handler runs, to count executions across processes.
#[derive(Clone)]
enum Runs {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

impl Runs {
    fn of(store: &AnyJobStore) -> Self {
        match store {
            #[cfg(feature = "sqlite")]
            AnyJobStore::Sqlite(s) => Self::Sqlite(s.pool().clone()),
            #[cfg(feature = "postgres")]
            AnyJobStore::Postgres(s) => Self::Postgres(s.pool().clone()),
            other => panic!("no runs table for {other:?}"),
        }
    }

    async fn create(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => sqlx::query("CREATE TABLE crash_runs (job_id BLOB, pid INTEGER)")
                .execute(p)
                .await
                .map(drop),
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => sqlx::query("CREATE TABLE crash_runs (job_id uuid, pid int)")
                .execute(p)
                .await
                .map(drop),
        }
        .unwrap();
    }

    async fn record(&self, id: JobId) {
        let pid = i64::from(std::process::id());
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => sqlx::query("INSERT INTO crash_runs VALUES (?1, ?2)")
                .bind(id.as_uuid())
                .bind(pid)
                .execute(p)
                .await
                .map(drop),
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => sqlx::query("INSERT INTO crash_runs VALUES ($1, $2::int)")
                .bind(id.as_uuid())
                .bind(pid)
                .execute(p)
                .await
                .map(drop),
        }
        .unwrap();
    }

    /// How many times each job ran.
    async fn counts(&self) -> HashMap<Uuid, i64> {
        let rows: Vec<(Uuid, i64)> = match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(p) => {
                sqlx::query_as("SELECT job_id, COUNT(*) FROM crash_runs GROUP BY job_id")
                    .fetch_all(p)
                    .await
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(p) => {
                sqlx::query_as("SELECT job_id, count(*) FROM crash_runs GROUP BY job_id")
                    .fetch_all(p)
                    .await
            }
        }
        .unwrap();
        rows.into_iter().collect()
    }
}

/// A worker child process, killed (SIGKILL) when dropped.
struct ChildWorker(Child);

impl ChildWorker {
    /// A child running 4 jobs at once and claiming `prefetch` more ahead.
    fn spawn(url: &str, lease: Duration, prefetch: u32) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash::child_worker", "--ignored", "--nocapture"])
            .env(CHILD_URL, url)
            .env(CHILD_LEASE_MS, lease.as_millis().to_string())
            .env(CHILD_PREFETCH, prefetch.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self(child)
    }

    fn kill(&mut self) {
        // `Child::kill` sends SIGKILL on Unix: no cleanup runs in the child.
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Drop for ChildWorker {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn jobs_of<S: JobStore>(queue: &JobQueue<S>, user: Uuid) -> Vec<appforge_jobs::Job> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(100);
    loop {
        let got = queue
            .list(user, &JobFilter::default(), &page)
            .await
            .unwrap();
        all.extend(got.items);
        match got.next {
            Some(c) => page = PageRequest::after(100, c),
            None => return all,
        }
    }
}

async fn wait_until<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < BOUND, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn work_job(user: Uuid, work_ms: u64) -> NewJob {
    NewJob::new("work", user, json!({ "work_ms": work_ms }))
}

/// SIGKILL a worker mid-batch: every job ends completed, none is lost, and only the jobs the
/// dead worker held (whose lease then expired) run a second time.
async fn killed_worker_loses_nothing(url: &str) {
    let store = AnyJobStore::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let runs = Runs::of(&store);
    runs.create().await;
    let queue = JobQueue::new(store);
    let user = Uuid::new_v4();
    let total = 120;
    // Two of the jobs are held by the child until it dies, so the kill always lands while it
    // holds work, however the machine schedules it.
    let ids = queue
        .enqueue_many(
            (0..total)
                .map(|i| {
                    let mut job = work_job(user, 15);
                    if i == 30 || i == 31 {
                        job.payload["hold_in_child"] = json!(true);
                    }
                    job
                })
                .collect(),
        )
        .await
        .unwrap();
    let lease = Duration::from_millis(800);
    // Claims sized to the free slots: what the dead worker held is bounded by its slots.
    let mut child = ChildWorker::spawn(url, lease, 0);
    wait_until("the child to finish some jobs and hold two", || async {
        let mut holding = 0;
        for id in [ids[30].id, ids[31].id] {
            if queue.get(user, id).await.unwrap().status == JobStatus::Processing {
                holding += 1;
            }
        }
        holding == 2 && queue.stats().await.unwrap().count(JobStatus::Completed) >= 20
    })
    .await;
    child.kill();
    // Nothing changes the dead worker's jobs until their lease expires: they are exactly the
    // ones running at the kill.
    let held: HashSet<JobId> = jobs_of(&queue, user)
        .await
        .into_iter()
        .filter(|j| j.status == JobStatus::Processing)
        .map(|j| j.id)
        .collect();
    let done_before: HashSet<JobId> = jobs_of(&queue, user)
        .await
        .into_iter()
        .filter(|j| j.status == JobStatus::Completed)
        .map(|j| j.id)
        .collect();
    let r = runs.clone();
    // The survivor's own leases are long: a heartbeat delayed on a loaded machine must not
    // let its jobs expire and run again, which would blur what the dead worker held.
    let survivor = WorkerPool::builder(queue.clone())
        .concurrency(4)
        .lease(Duration::from_secs(30))
        .heartbeat(Duration::from_secs(2))
        .rescue_interval(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(50))
        .handler("work", move |ctx| {
            let r = r.clone();
            async move { work(ctx, r, Process::Test).await }
        })
        .start()
        .unwrap();
    wait_until("every job to finish", || async {
        queue.stats().await.unwrap().count(JobStatus::Completed) == u64::try_from(total).unwrap()
    })
    .await;
    survivor.shutdown(Duration::from_secs(5)).await;
    let jobs = jobs_of(&queue, user).await;
    let counts = runs.counts().await;
    assert_eq!(jobs.len(), total);
    let mut rescued = 0;
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Completed, "{job:?}");
        let ran = counts.get(&job.id.as_uuid()).copied().unwrap_or(0);
        // A run needs an attempt: nothing ran without a claim, nothing ran twice per claim.
        assert!(
            ran >= 1 && ran <= i64::from(job.attempt),
            "{job:?} ran {ran} times"
        );
        if job.attempt > 1 {
            // Only a job the dead worker held comes back, once, after its lease expired. (A
            // statement the child sent just before dying may still land after the snapshot:
            // a held job can also end completed by it, on attempt 1.)
            assert_eq!(job.attempt, 2, "{job:?}");
            rescued += 1;
        }
        if done_before.contains(&job.id) {
            assert_eq!(
                (job.attempt, ran),
                (1, 1),
                "a finished job ran again: {job:?}"
            );
        }
    }
    // The child runs 4 at a time and may have had one more claim of 4 in flight.
    assert!(
        rescued <= 8,
        "{rescued} jobs re-ran; the dead worker held at most 8"
    );
    for id in [ids[30].id, ids[31].id] {
        assert!(held.contains(&id), "the dead worker held {id:?}");
        let job = jobs.iter().find(|j| j.id == id).unwrap();
        assert_eq!(
            job.attempt, 2,
            "a held job runs again after its lease: {job:?}"
        );
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_worker_loses_nothing() {
    let file = appforge_testing::TempSqlite::new();
    killed_worker_loses_nothing(&file.url()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_worker_loses_nothing() {
    let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    killed_worker_loses_nothing(db.url()).await;
}

/// SIGKILL a worker that prefetches (the default) while every slot is busy and the rest of
/// the batch waits in it claimed but not started: every job ends completed, none is lost,
/// none ran twice per claim, and the jobs it held come back once their lease expires.
async fn killed_prefetching_worker_loses_nothing(url: &str) {
    let store = AnyJobStore::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let runs = Runs::of(&store);
    runs.create().await;
    let queue = JobQueue::new(store);
    let user = Uuid::new_v4();
    let total = 120;
    // Four jobs (the child's concurrency) never finish in the child: once they run, the jobs
    // after them wait in the child, prefetched, until it dies.
    let holders = 30..34;
    let ids = queue
        .enqueue_many(
            (0..total)
                .map(|i| {
                    let mut job = work_job(user, 15);
                    if holders.contains(&i) {
                        job.payload["hold_in_child"] = json!(true);
                    }
                    job
                })
                .collect(),
        )
        .await
        .unwrap();
    // Long enough that a heartbeat late on a loaded machine does not let a lease lapse (and
    // a rescue put a claimed job back) before the kill.
    let lease = Duration::from_millis(2_000);
    let mut child = ChildWorker::spawn(url, lease, appforge_jobs::DEFAULT_PREFETCH);
    wait_until("the child to run the four holders", || async {
        let counts = runs.counts().await;
        holders
            .clone()
            .all(|i| counts.contains_key(&ids[i].id.as_uuid()))
    })
    .await;
    // With its four slots held for good, the child claims more jobs than it can start: wait
    // for one of those to be claimed (its claim loop may not have run again yet).
    wait_until(
        "the child to hold a prefetched job it cannot start",
        || async {
            let started = runs.counts().await;
            jobs_of(&queue, user).await.iter().any(|j| {
                j.status == JobStatus::Processing && !started.contains_key(&j.id.as_uuid())
            })
        },
    )
    .await;
    child.kill();
    let at_kill = jobs_of(&queue, user).await;
    let held: HashSet<JobId> = at_kill
        .iter()
        .filter(|j| j.status == JobStatus::Processing)
        .map(|j| j.id)
        .collect();
    let done_before: HashSet<JobId> = at_kill
        .iter()
        .filter(|j| j.status == JobStatus::Completed)
        .map(|j| j.id)
        .collect();
    let started = runs.counts().await;
    let waiting = held
        .iter()
        .filter(|id| !started.contains_key(&id.as_uuid()))
        .count();
    assert!(
        waiting > 0,
        "the dead worker held prefetched jobs that never started ({} held)",
        held.len()
    );
    assert!(
        at_kill.iter().all(|j| j.status != JobStatus::Pending),
        "the child claimed the whole batch at once"
    );
    let r = runs.clone();
    let survivor = WorkerPool::builder(queue.clone())
        .concurrency(4)
        .lease(Duration::from_secs(30))
        .heartbeat(Duration::from_secs(2))
        .rescue_interval(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(50))
        .handler("work", move |ctx| {
            let r = r.clone();
            async move { work(ctx, r, Process::Test).await }
        })
        .start()
        .unwrap();
    wait_until("every job to finish", || async {
        queue.stats().await.unwrap().count(JobStatus::Completed) == u64::try_from(total).unwrap()
    })
    .await;
    survivor.shutdown(Duration::from_secs(5)).await;
    let jobs = jobs_of(&queue, user).await;
    let counts = runs.counts().await;
    assert_eq!(jobs.len(), total);
    for job in &jobs {
        assert_eq!(job.status, JobStatus::Completed, "{job:?}");
        let ran = counts.get(&job.id.as_uuid()).copied().unwrap_or(0);
        assert!(
            ran >= 1 && ran <= i64::from(job.attempt),
            "{job:?} ran {ran} times"
        );
        if done_before.contains(&job.id) {
            assert_eq!(
                (job.attempt, ran),
                (1, 1),
                "a finished job ran again: {job:?}"
            );
        }
        if held.contains(&job.id) {
            // Its claim counted an attempt even when it never started: the rescue spends it.
            // The one exception is a job the dead worker had run and whose finish was already
            // on its way: PostgreSQL commits a statement it received before the client died,
            // so the job completes on its first attempt. A prefetched job that never started
            // cannot: it always comes back.
            let finished_in_flight =
                job.attempt == 1 && ran == 1 && started.contains_key(&job.id.as_uuid());
            assert!(
                job.attempt == 2 || finished_in_flight,
                "a held job runs again after its lease: {job:?}"
            );
        } else {
            assert_eq!(job.attempt, 1, "only held jobs come back: {job:?}");
        }
    }
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_killed_prefetching_worker_loses_nothing() {
    let file = appforge_testing::TempSqlite::new();
    killed_prefetching_worker_loses_nothing(&file.url()).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_prefetching_worker_loses_nothing() {
    let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    killed_prefetching_worker_loses_nothing(db.url()).await;
}

/// Two worker processes on one database drain a batch; no job runs twice.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_worker_processes_share_a_batch() {
    let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    let store = AnyJobStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let runs = Runs::of(&store);
    runs.create().await;
    let queue = JobQueue::new(store);
    let user = Uuid::new_v4();
    let total = 300;
    queue
        .enqueue_many((0..total).map(|_| work_job(user, 2)).collect())
        .await
        .unwrap();
    // Without prefetch: with it, the first claim of either process takes the whole batch.
    let _a = ChildWorker::spawn(db.url(), Duration::from_secs(5), 0);
    let _b = ChildWorker::spawn(db.url(), Duration::from_secs(5), 0);
    wait_until("both workers to drain the batch", || async {
        queue.stats().await.unwrap().count(JobStatus::Completed) == u64::try_from(total).unwrap()
    })
    .await;
    let counts = runs.counts().await;
    assert_eq!(counts.len(), total);
    assert!(counts.values().all(|n| *n == 1), "a job ran twice");
    let pids: HashSet<String> = jobs_of(&queue, user)
        .await
        .iter()
        .map(|j| j.result.as_ref().unwrap()["pid"].to_string())
        .collect();
    assert_eq!(pids.len(), 2, "both processes took part");
}

/// Connections killed with `pg_terminate_backend` mid-run: workers recover, nothing is lost.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_terminated_connections_lose_nothing() {
    let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    let store = AnyJobStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let runs = Runs::of(&store);
    runs.create().await;
    let queue = JobQueue::new(store);
    let user = Uuid::new_v4();
    let total = 200;
    queue
        .enqueue_many((0..total).map(|_| work_job(user, 5)).collect())
        .await
        .unwrap();
    let r = runs.clone();
    let pool = WorkerPool::builder(queue.clone())
        .concurrency(4)
        .lease(Duration::from_millis(800))
        .heartbeat(Duration::from_millis(150))
        .rescue_interval(Duration::from_millis(100))
        .poll_interval(Duration::from_millis(50))
        .handler("work", move |ctx| {
            let r = r.clone();
            async move { work(ctx, r, Process::Test).await }
        })
        .start()
        .unwrap();
    let admin = db.pool().await;
    for round in 0..3 {
        wait_until("progress before the next kill", || async {
            queue.stats().await.unwrap().count(JobStatus::Completed) >= 30 * (round + 1)
        })
        .await;
        let killed: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        assert!(killed > 0, "round {round}: no connection was terminated");
    }
    wait_until("every job to finish after the kills", || async {
        queue
            .stats()
            .await
            .is_ok_and(|s| s.count(JobStatus::Completed) == u64::try_from(total).unwrap())
    })
    .await;
    pool.shutdown(Duration::from_secs(5)).await;
    let jobs = jobs_of(&queue, user).await;
    assert!(jobs.iter().all(|j| j.status == JobStatus::Completed));
    let counts = runs.counts().await;
    for job in &jobs {
        let ran = counts.get(&job.id.as_uuid()).copied().unwrap_or(0);
        assert!(
            ran >= 1 && ran <= i64::from(job.attempt),
            "{job:?} ran {ran} times"
        );
    }
}

/// A subscriber in one process sees the events of a job another process runs, live (polling
/// is set far beyond the test's bound, so only notifications can deliver them), and can
/// cancel it there.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_events_cross_processes() {
    let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    let store = AnyJobStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    Runs::of(&store).create().await;
    let queue = JobQueue::builder(store)
        .subscription_poll(Duration::from_secs(3600))
        .build()
        .unwrap();
    let user = Uuid::new_v4();
    // Enqueued with a delay, so that the subscription is in place before it can start.
    let start_at = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let id = queue
        .enqueue(
            NewJob::new("work", user, json!({ "work_ms": 100, "progress": true })).run_at(start_at),
        )
        .await
        .unwrap()
        .id;
    let mut sub = queue.subscribe(user, id).await.unwrap();
    let _child = ChildWorker::spawn(
        db.url(),
        Duration::from_secs(5),
        appforge_jobs::DEFAULT_PREFETCH,
    );
    let mut events = Vec::new();
    let finished = tokio::time::timeout(BOUND, async {
        while let Some(e) = sub.next().await {
            events.push(e);
        }
    })
    .await;
    assert!(finished.is_ok(), "the job's events arrive; got {events:?}");
    let kinds: Vec<&JobEventKind> = events.iter().map(|e| &e.kind).collect();
    assert!(matches!(kinds[0], JobEventKind::Snapshot { .. }));
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, JobEventKind::Started { .. })),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, JobEventKind::Progress { .. })),
        "{kinds:?}"
    );
    assert!(
        matches!(kinds.last(), Some(JobEventKind::Completed { .. })),
        "{kinds:?}"
    );

    // Cancelling here stops the handler there.
    let id = queue
        .enqueue(NewJob::new(
            "work",
            user,
            json!({ "work_ms": 1, "wait_for_cancel": true }),
        ))
        .await
        .unwrap()
        .id;
    let mut sub = queue.subscribe(user, id).await.unwrap();
    tokio::time::timeout(BOUND, async {
        while let Some(e) = sub.next().await {
            // A snapshot may already show it running.
            if e.status == JobStatus::Processing {
                break;
            }
        }
    })
    .await
    .unwrap();
    queue.cancel(user, id).await.unwrap();
    let last = tokio::time::timeout(BOUND, sub.collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(
        matches!(last.last().map(|e| &e.kind), Some(JobEventKind::Cancelled)),
        "{last:?}"
    );
}

/// Jobs enqueued inside a caller's transaction exist only if it commits.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_enqueue_inside_a_transaction() {
    let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    let store = appforge_jobs::PgJobStore::from_pool(db.pool().await);
    store.migrate().await.unwrap();
    let queue = JobQueue::new(store.clone());
    let user = Uuid::new_v4();
    let mut tx = store.pool().begin().await.unwrap();
    let rolled_back = queue
        .enqueue_in(&mut tx, vec![work_job(user, 1)])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(
        queue
            .get(user, rolled_back[0].id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let mut tx = store.pool().begin().await.unwrap();
    let committed = queue
        .enqueue_in(&mut tx, vec![work_job(user, 1).dedupe_key("tx")])
        .await
        .unwrap();
    // Invisible to others until the commit.
    assert!(
        queue
            .get(user, committed[0].id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        queue.get(user, committed[0].id).await.unwrap().status,
        JobStatus::Pending
    );
    let dup = queue
        .enqueue(work_job(user, 1).dedupe_key("tx"))
        .await
        .unwrap();
    assert_eq!((dup.id, dup.deduplicated), (committed[0].id, true));
    assert!(matches!(
        queue
            .enqueue_in(
                &mut store.pool().acquire().await.unwrap(),
                vec![NewJob::new("", user, json!(1))]
            )
            .await,
        Err(appforge_jobs::Error::InvalidInput(_))
    ));
}
