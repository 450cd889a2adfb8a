use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::context::{Handler, JobContext, TypedHandler, handler, typed_handler};
use crate::store::{Finish, FinishRequest, JobStore, Lease, WorkerInfo};
use crate::time::add;
use crate::{Error, Job, JobEventKind, JobId, JobQueue, Outcome, Result, WorkerId};

/// Whether a worker starts a job it claimed: the answer of the pool's
/// [admission](WorkerPoolBuilder::admission) check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admit {
    /// Run it now.
    Run,
    /// Give it back unstarted (its attempt is not spent) to run no sooner than this delay;
    /// meanwhile the pool claims no other job submitted by the same user ([`Job::user_id`],
    /// whether the job is in their personal space or an org's).
    Defer(Duration),
}

/// The admission check of a pool.
type AdmissionHook = Arc<dyn Fn(&Job) -> BoxFuture<'static, Admit> + Send + Sync>;

/// Jobs a [`WorkerPool`] claims ahead of its free slots unless
/// [`WorkerPoolBuilder::prefetch`] says otherwise.
///
/// Claiming is a write per statement, so a pool that claims only what its free slots take
/// spends one statement per job or two once the queue is busy; batching is what lets a pool
/// drain short jobs at the store's speed. A pool claims again once half of what it holds is
/// free, so the prefetch also sets the size of its claims: on the `jobs-drain` bench (20,000
/// no-op jobs, concurrency 10, 2 cores shared with the database and other work) PostgreSQL
/// drains about 3,300 jobs a second without prefetch, 11,000 with 100, 16,000 with 250,
/// 12,000 to 20,000 with 500 and 21,000 with 1,000, SQLite 4,200, 12,000, 12,000 to 15,000,
/// 9,000 to 18,000 and 11,000 to 18,000 (a few runs each on a machine busy with other work).
/// Past a few hundred the gain is in the claims' fixed costs and flattens out.
///
/// What a pool holds grows with the number: each prefetched job is in memory with its
/// payload (a few megabytes for 1,000 jobs of a few kilobytes), it is not available to other
/// pools, and a job enqueued later at a higher priority waits behind it in this pool (other
/// pools can take it). A prefetched job is claimed (its attempt is counted) before it starts;
/// it waits under a renewed lease and a graceful shutdown gives it back unspent, but a worker
/// that dies leaves it to lease expiry like a running job, and the rescue counts that attempt:
/// after a crash up to this many jobs start only once their lease has run out. Pools next to
/// others whose jobs are long (they would rather be shared out) and jobs with a single
/// attempt set [`WorkerPoolBuilder::prefetch`] to 0.
pub const DEFAULT_PREFETCH: u32 = 1_000;

/// Builds and starts a [`WorkerPool`].
pub struct WorkerPoolBuilder<S> {
    queue: JobQueue<S>,
    handlers: HashMap<String, Handler>,
    settings: Settings,
    name: String,
    admission: Option<AdmissionHook>,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    concurrency: u32,
    prefetch: u32,
    lease: Duration,
    heartbeat: Duration,
    poll_interval: Duration,
    rescue_interval: Duration,
    completion_batch: usize,
}

impl<S> fmt::Debug for WorkerPoolBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPoolBuilder")
            .field("name", &self.name)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S: JobStore> WorkerPoolBuilder<S> {
    /// Registers the handler for jobs of `kind`. The pool only claims kinds it has handlers for.
    #[must_use]
    pub fn handler<F, Fut>(mut self, kind: impl Into<String>, f: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        self.handlers.insert(kind.into(), handler(f));
        self
    }

    /// Registers the handler for typed jobs of kind [`A::KIND`](crate::JobArgs::KIND): the
    /// payload is decoded into `A` before the handler runs, and a payload that does not decode
    /// fails the job permanently with an error naming the kind and the serde error. Otherwise
    /// as [`handler`](Self::handler), which it replaces for that kind (and the other way round).
    ///
    /// ```
    /// use appforge_jobs::{JobArgs, JobQueue, MemoryJobStore, Outcome, WorkerPool};
    /// use serde::{Deserialize, Serialize};
    /// use std::time::Duration;
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct FullApp {
    ///     prompt: String,
    /// }
    ///
    /// impl JobArgs for FullApp {
    ///     const KIND: &'static str = "full_app";
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_jobs::Result<()> {
    /// let queue = JobQueue::new(MemoryJobStore::new());
    /// let pool = WorkerPool::builder(queue.clone())
    ///     .handle::<FullApp>(|_ctx, args| async move {
    ///         Outcome::success(serde_json::json!({ "name": args.prompt }))
    ///     })
    ///     .start()?;
    /// # pool.shutdown(Duration::from_secs(1)).await;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn handle<A: crate::JobArgs>(mut self, f: impl TypedHandler<A>) -> Self {
        self.handlers
            .insert(A::KIND.to_owned(), typed_handler::<A>(f));
        self
    }

    /// Jobs run at once (default 10).
    #[must_use]
    pub fn concurrency(mut self, n: u32) -> Self {
        self.settings.concurrency = n;
        self
    }

    /// Jobs claimed ahead of free slots, waiting locally under a renewed lease (default
    /// [`DEFAULT_PREFETCH`]; 0 sizes claims to the free slots). Larger batches per claim for
    /// many short jobs, at the cost of holding jobs another worker could have started: a pool
    /// that runs long jobs next to other pools, or one whose jobs allow a single attempt, sets
    /// it low (see [`DEFAULT_PREFETCH`]).
    #[must_use]
    pub fn prefetch(mut self, n: u32) -> Self {
        self.settings.prefetch = n;
        self
    }

    /// How long a claimed job's lease lasts without a heartbeat (default 30 s).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.settings.lease = lease;
        self
    }

    /// How often leases are renewed and the pool's liveness recorded (default 5 s).
    #[must_use]
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.settings.heartbeat = every;
        self
    }

    /// How often an idle pool polls for runnable jobs when no wake-up arrives (default 1 s).
    #[must_use]
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.settings.poll_interval = every;
        self
    }

    /// How often the pool rescues jobs whose lease expired (default: the heartbeat interval).
    #[must_use]
    pub fn rescue_interval(mut self, every: Duration) -> Self {
        self.settings.rescue_interval = every;
        self
    }

    /// Attempt endings written per statement at most (default 500).
    #[must_use]
    pub fn completion_batch(mut self, n: usize) -> Self {
        self.settings.completion_batch = n;
        self
    }

    /// Checks each claimed job before it starts: [`Admit::Run`] runs it,
    /// [`Admit::Defer`] gives it back to the queue unstarted. For a fair share of the workers,
    /// a host defers the job of a user who already runs as many jobs as their plan allows
    /// (per submitter, [`Job::user_id`]: an org's job counts for the member who submitted it).
    ///
    /// ```
    /// use appforge_jobs::{Admit, JobQueue, MemoryJobStore, Outcome, WorkerPool};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_jobs::Result<()> {
    /// let queue = JobQueue::new(MemoryJobStore::new());
    /// let pool = WorkerPool::builder(queue.clone())
    ///     .handler("full_app", |_ctx| async { Outcome::success(serde_json::json!({})) })
    ///     .admission(|job| {
    ///         let busy = job.payload["busy"].as_bool().unwrap_or(false);
    ///         async move { if busy { Admit::Defer(Duration::from_secs(2)) } else { Admit::Run } }
    ///     })
    ///     .start()?;
    /// # pool.shutdown(Duration::from_secs(1)).await;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn admission<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn(&Job) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Admit> + Send + 'static,
    {
        self.admission = Some(Arc::new(move |job| Box::pin(check(job))));
        self
    }

    /// A name for dashboards (default: host and process id).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Starts the pool on the current Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for no handlers, zero concurrency or intervals, or a heartbeat not
    /// shorter than the lease.
    pub fn start(self) -> Result<WorkerPool<S>> {
        let s = self.settings;
        if self.handlers.is_empty() {
            return Err(Error::Config(
                "a worker pool needs at least one handler".into(),
            ));
        }
        if s.concurrency == 0 || s.completion_batch == 0 {
            return Err(Error::Config(
                "concurrency and completion batch must be positive".into(),
            ));
        }
        if [s.lease, s.heartbeat, s.poll_interval, s.rescue_interval]
            .iter()
            .any(Duration::is_zero)
        {
            return Err(Error::Config("worker intervals must be positive".into()));
        }
        if s.heartbeat >= s.lease {
            return Err(Error::Config(format!(
                "heartbeat {:?} must be shorter than the lease {:?}",
                s.heartbeat, s.lease
            )));
        }
        let permits = usize::try_from(s.concurrency)
            .map_err(|_| Error::Config("concurrency too large".into()))?;
        let held = usize::try_from(s.concurrency.saturating_add(s.prefetch))
            .map_err(|_| Error::Config("prefetch too large".into()))?;
        let (done_tx, done_rx) = mpsc::channel(s.completion_batch.max(64) * 4);
        let mut kinds: Vec<String> = self.handlers.keys().cloned().collect();
        kinds.sort();
        let shared = Arc::new(Shared {
            queue: self.queue,
            id: WorkerId::new(),
            name: self.name,
            started_at: chrono::Utc::now(),
            settings: s,
            handlers: self.handlers,
            kinds,
            running: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(permits)),
            capacity: Arc::new(Semaphore::new(held)),
            stop: CancellationToken::new(),
            closing: CancellationToken::new(),
            halt: CancellationToken::new(),
            tracker: TaskTracker::new(),
            done_tx,
            admission: self.admission,
            deferred: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
            drained: Notify::new(),
        });
        // The claim loop runs on the tracker, so that a shutdown's wait also covers a claim in
        // flight when it began (and the jobs that claim hands out).
        let tasks = vec![
            shared.tracker.spawn(claim_loop(Arc::clone(&shared))),
            tokio::spawn(heartbeat_loop(Arc::clone(&shared))),
            tokio::spawn(rescue_loop(Arc::clone(&shared))),
            tokio::spawn(cancel_watcher(Arc::clone(&shared))),
        ];
        let completer = tokio::spawn(completer(Arc::clone(&shared), done_rx));
        Ok(WorkerPool {
            shared,
            tasks: Mutex::new(tasks),
            completer: Mutex::new(Some(completer)),
        })
    }
}

/// A running pool of workers over a [`JobQueue`]: claims jobs in batches of its free slots
/// plus a prefetch ([`DEFAULT_PREFETCH`]), runs their handlers, renews leases by heartbeat,
/// rescues expired leases, and stops gracefully with [`shutdown`](Self::shutdown).
///
/// While claimed jobs still wait for a slot, the pool claims again only once it can take at
/// least half of what it holds, and it sends the next claim while the last is out (two at
/// most): many short jobs come in a few large claims, and draining them does not wait for
/// each claim's round trip. Jobs are handed out in the order their claims were sent.
///
/// Dropping the pool without `shutdown` stops claiming and leaves running jobs' leases to
/// expire (they are then rescued, as after a crash).
pub struct WorkerPool<S> {
    shared: Arc<Shared<S>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    completer: Mutex<Option<JoinHandle<()>>>,
}

impl<S> fmt::Debug for WorkerPool<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("id", &self.shared.id)
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

/// How a [`WorkerPool::shutdown`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every running job finished before the deadline.
    pub drained: bool,
    /// Jobs still running at the deadline, whose leases were released back to pending.
    pub released: usize,
}

struct Shared<S> {
    queue: JobQueue<S>,
    id: WorkerId,
    name: String,
    started_at: chrono::DateTime<chrono::Utc>,
    settings: Settings,
    handlers: HashMap<String, Handler>,
    kinds: Vec<String>,
    running: Mutex<HashMap<JobId, Running>>,
    /// Jobs running at once.
    slots: Arc<Semaphore>,
    /// Jobs held at once (running or claimed ahead).
    capacity: Arc<Semaphore>,
    /// Stop claiming.
    stop: CancellationToken,
    /// Flush the completer and stop it.
    closing: CancellationToken,
    /// Stop heartbeats, rescues and the cancel watcher.
    halt: CancellationToken,
    tracker: TaskTracker,
    done_tx: mpsc::Sender<FinishRequest>,
    admission: Option<AdmissionHook>,
    /// Users whose job this pool deferred, until when (the queue's time) it claims none of
    /// theirs.
    deferred: Mutex<HashMap<uuid::Uuid, chrono::DateTime<chrono::Utc>>>,
    /// Claimed jobs waiting locally for a slot.
    waiting: AtomicUsize,
    /// Signalled when the last claimed job waiting locally stops waiting.
    drained: Notify,
}

impl<S> Shared<S> {
    /// A claimed job stopped waiting locally (it took a slot, or went back unstarted): wakes
    /// the claim loop when none waits any more.
    fn unqueue(&self) {
        if self.waiting.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_one();
        }
    }
}

struct Running {
    lease: Lease,
    token: CancellationToken,
    cancel_requested: bool,
    /// The lease was lost or released: drop the attempt's outcome.
    abandoned: bool,
}

impl<S: JobStore> WorkerPool<S> {
    /// A builder for a pool over `queue`.
    pub fn builder(queue: JobQueue<S>) -> WorkerPoolBuilder<S> {
        WorkerPoolBuilder {
            queue,
            handlers: HashMap::new(),
            settings: Settings {
                concurrency: 10,
                prefetch: DEFAULT_PREFETCH,
                lease: Duration::from_secs(30),
                heartbeat: Duration::from_secs(5),
                poll_interval: Duration::from_secs(1),
                rescue_interval: Duration::from_secs(5),
                completion_batch: 500,
            },
            admission: None,
            name: format!(
                "{}:{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into()),
                std::process::id()
            ),
        }
    }

    /// This pool's id (the lease owner of the jobs it runs).
    #[must_use]
    pub fn id(&self) -> WorkerId {
        self.shared.id
    }

    /// Jobs running right now.
    #[must_use]
    pub fn running(&self) -> usize {
        self.shared.running.lock().len()
    }

    /// Stops claiming new jobs at once; jobs already claimed run on. The first step of a
    /// graceful stop, for a host that stops other things (its HTTP server) before it waits
    /// for the running jobs with [`shutdown`](Self::shutdown).
    pub fn stop_claiming(&self) {
        self.shared.stop.cancel();
    }

    /// Whether the pool has stopped claiming ([`stop_claiming`](Self::stop_claiming) or
    /// [`shutdown`](Self::shutdown)).
    #[must_use]
    pub fn is_claiming(&self) -> bool {
        !self.shared.stop.is_cancelled()
    }

    /// Stops claiming, waits up to `deadline` for running jobs, then cancels the rest and
    /// releases their leases back to pending; flushes outstanding completions.
    pub async fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let shared = &self.shared;
        shared.stop.cancel();
        shared.tracker.close();
        let drained = tokio::time::timeout(deadline, shared.tracker.wait())
            .await
            .is_ok();
        let mut released = 0;
        if !drained {
            let leases: Vec<Lease> = {
                // Forget them: a handler that finishes later finds no entry and writes nothing.
                let mut running = shared.running.lock();
                running
                    .drain()
                    .map(|(_, r)| {
                        r.token.cancel();
                        r.lease
                    })
                    .collect()
            };
            let now = shared.queue.now();
            let batch: Vec<FinishRequest> = leases
                .iter()
                .map(|lease| FinishRequest {
                    lease: *lease,
                    finish: Finish::Release,
                    now,
                })
                .collect();
            match shared.queue.finish(&batch).await {
                Ok(results) => released = results.iter().filter(|r| r.is_ok()).count(),
                Err(e) => tracing::warn!(error = %e, "cannot release leases; they will expire"),
            }
        }
        shared.closing.cancel();
        let completer = self.completer.lock().take();
        if let Some(handle) = completer {
            let _ = handle.await;
        }
        shared.halt.cancel();
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            let _ = task.await;
        }
        if let Err(e) = shared.queue.store().remove_worker(shared.id).await {
            tracing::warn!(error = %e, "cannot unregister worker");
        }
        ShutdownReport { drained, released }
    }
}

impl<S> Drop for WorkerPool<S> {
    fn drop(&mut self) {
        self.shared.stop.cancel();
        self.shared.closing.cancel();
        self.shared.halt.cancel();
    }
}

/// Claims one pool has in flight at once: the next is sent while the last is still out, so
/// that a pool draining short jobs is not idle for the round trip of every claim.
const CLAIMS_IN_FLIGHT: usize = 2;

/// What the claim loop waits for before it claims again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    /// Nothing: it claims as soon as it has free capacity.
    No,
    /// The last claim found fewer jobs than it asked for: a wake-up or the poll interval.
    UntilWake,
    /// The last claim failed: the poll interval.
    Backoff,
}

async fn claim_loop<S: JobStore>(shared: Arc<Shared<S>>) {
    shared.queue.ensure_listening().await;
    let mut wakes = shared.queue.wakes();
    let max = usize::try_from(
        shared
            .settings
            .concurrency
            .saturating_add(shared.settings.prefetch),
    )
    .unwrap_or(usize::MAX);
    // Claims in flight, oldest first: their jobs are handed out in the order they were sent.
    let mut claims: FuturesOrdered<BoxFuture<'static, Claimed>> = FuturesOrdered::new();
    let mut pause = Pause::No;
    loop {
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => break,
            Some((claimed, permit)) = claims.next(), if !claims.is_empty() => match claimed {
                Ok(jobs) => {
                    pause = if jobs.len() < permit.num_permits() {
                        Pause::UntilWake
                    } else {
                        Pause::No
                    };
                    hand_out(&shared, jobs, permit);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claim failed; retrying after the poll interval");
                    pause = Pause::Backoff;
                }
            },
            permit = free_capacity(&shared, max),
                if claims.len() < CLAIMS_IN_FLIGHT && pause == Pause::No =>
            {
                let Some(permit) = permit else { break };
                if shared.stop.is_cancelled() {
                    break;
                }
                // Mark wake-ups seen before claiming: one arriving during the claim is kept.
                wakes.borrow_and_update();
                claims.push_back(Box::pin(claim(Arc::clone(&shared), permit)));
            }
            _ = wakes.changed(), if pause == Pause::UntilWake => pause = Pause::No,
            () = tokio::time::sleep(shared.settings.poll_interval), if pause != Pause::No => {
                pause = Pause::No;
            }
        }
    }
    // The pool stopped claiming: the jobs of claims still in flight go straight back,
    // unstarted, with their attempts unspent.
    while let Some((claimed, _permit)) = claims.next().await {
        let Ok(jobs) = claimed else { continue };
        let now = shared.queue.now();
        for job in jobs {
            if let Some(lease) = job.lease() {
                let release = FinishRequest {
                    lease,
                    finish: Finish::Release,
                    now,
                };
                let _ = shared.done_tx.send(release).await;
            }
        }
    }
}

/// The capacity the next claim fills, `None` once the pool is closed. While claimed jobs
/// still wait locally it waits until it can take half of what the pool holds: short jobs
/// then come in a few large claims, not in one small claim per job that ends. Once no
/// claimed job waits, whatever is free is claimed at once.
async fn free_capacity<S>(shared: &Shared<S>, max: usize) -> Option<OwnedSemaphorePermit> {
    let batch = max.div_ceil(2);
    let mut permit = Arc::clone(&shared.capacity).acquire_owned().await.ok()?;
    while permit.num_permits() < batch && shared.waiting.load(Ordering::Acquire) > 0 {
        let need = u32::try_from(batch - permit.num_permits()).unwrap_or(u32::MAX);
        tokio::select! {
            biased;
            more = Arc::clone(&shared.capacity).acquire_many_owned(need) => permit.merge(more.ok()?),
            () = shared.drained.notified() => {}
        }
    }
    // Let jobs finishing at the same moment free their slots: one claim for all of them.
    tokio::task::yield_now().await;
    let extra = shared
        .capacity
        .available_permits()
        .min(max.saturating_sub(permit.num_permits()));
    if extra > 0
        && let Ok(more) =
            Arc::clone(&shared.capacity).try_acquire_many_owned(u32::try_from(extra).unwrap_or(0))
    {
        permit.merge(more);
    }
    Some(permit)
}

/// What a claim returns: its jobs, and the capacity it was sent for.
type Claimed = (Result<Vec<Job>>, OwnedSemaphorePermit);

/// Claims as many jobs as `permit` holds; returns them with the permit.
async fn claim<S: JobStore>(shared: Arc<Shared<S>>, permit: OwnedSemaphorePermit) -> Claimed {
    let excluded: Vec<uuid::Uuid> = {
        let now = shared.queue.now();
        let mut deferred = shared.deferred.lock();
        deferred.retain(|_, until| *until > now);
        deferred.keys().copied().collect()
    };
    let claimed = shared
        .queue
        .claim(
            shared.id,
            Some(shared.kinds.clone()),
            u32::try_from(permit.num_permits()).unwrap_or(u32::MAX),
            shared.settings.lease,
            excluded,
        )
        .await;
    (claimed, permit)
}

/// Starts a task per claimed job, each with its share of the claim's capacity (the rest is
/// freed).
fn hand_out<S: JobStore>(
    shared: &Arc<Shared<S>>,
    jobs: Vec<Job>,
    mut permit: OwnedSemaphorePermit,
) {
    for job in jobs {
        let Some(one) = permit.split(1) else { break };
        shared.waiting.fetch_add(1, Ordering::AcqRel);
        shared.tracker.spawn(run_job(Arc::clone(shared), job, one));
    }
}

async fn run_job<S: JobStore>(shared: Arc<Shared<S>>, job: Job, permit: OwnedSemaphorePermit) {
    let Some(lease) = job.lease() else {
        shared.unqueue();
        return;
    };
    let token = CancellationToken::new();
    shared.running.lock().insert(
        job.id,
        Running {
            lease,
            token: token.clone(),
            cancel_requested: job.cancel_requested,
            abandoned: false,
        },
    );
    if job.cancel_requested {
        token.cancel();
    }
    // A prefetched job waits here for a free slot; its lease is renewed meanwhile. A pool
    // that stops before the job starts gives it back.
    let slot = tokio::select! {
        biased;
        () = shared.stop.cancelled() => None,
        slot = Arc::clone(&shared.slots).acquire_owned() => slot.ok(),
    };
    shared.unqueue();
    let Some(slot) = slot else {
        if shared.running.lock().remove(&lease.job_id).is_some() {
            let now = shared.queue.now();
            let release = FinishRequest {
                lease,
                finish: Finish::Release,
                now,
            };
            let _ = shared.done_tx.send(release).await;
        }
        return;
    };
    if let Some(admission) = &shared.admission
        && let Admit::Defer(delay) = admission(&job).await
    {
        if shared.running.lock().remove(&lease.job_id).is_some() {
            let now = shared.queue.now();
            let run_at = add(now, delay);
            shared.deferred.lock().insert(job.user_id, run_at);
            let request = FinishRequest {
                lease,
                finish: Finish::Defer { run_at },
                now,
            };
            if shared.done_tx.send(request).await.is_err() {
                tracing::warn!(job = %lease.job_id, "completer stopped; the lease will expire");
            }
        }
        return;
    }
    let user = job.user_id;
    let max_attempts = job.max_attempts;
    let outcome = match shared.handlers.get(&job.kind) {
        None => Outcome::permanent(format!("no handler for job kind {:?}", job.kind)),
        Some(handler) => {
            let reporter = Arc::new(shared.queue.clone());
            let ctx = JobContext::new(Arc::new(job), lease, token, reporter);
            AssertUnwindSafe(handler(ctx))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "non-string panic".into());
                    tracing::error!(job = %lease.job_id, panic = %message, "job handler panicked");
                    Outcome::retry(format!("handler panicked: {message}"))
                })
        }
    };
    let Some(state) = shared.running.lock().remove(&lease.job_id) else {
        return;
    };
    // One of the user's jobs ends here: their deferred jobs may be claimed again.
    shared.deferred.lock().remove(&user);
    if state.abandoned {
        return;
    }
    let now = shared.queue.now();
    let tokens = outcome.tokens();
    let finish = match outcome {
        Outcome::Success {
            result,
            input_tokens,
            output_tokens,
        } => Finish::Complete {
            result,
            input_tokens,
            output_tokens,
        },
        _ if state.cancel_requested => Finish::Cancel { tokens },
        Outcome::Retryable {
            error, retry_after, ..
        } if lease.attempt < max_attempts => {
            let delay = shared
                .queue
                .retry_policy()
                .delay(lease.attempt, retry_after);
            Finish::Retry {
                run_at: add(now, delay),
                error,
            }
        }
        Outcome::Retryable { error, .. } => Finish::Fail {
            error: format!("{error} (attempt {} of {max_attempts})", lease.attempt),
            tokens,
        },
        Outcome::Permanent { error, .. } => Finish::Fail { error, tokens },
    };
    let request = FinishRequest { lease, finish, now };
    if shared.done_tx.send(request).await.is_err() {
        tracing::warn!(job = %lease.job_id, "completer stopped; the lease will expire");
    }
    drop(slot);
    drop(permit);
}

/// Writes attempt endings in batches, up to [`FLUSHES`] statements in flight at once (commits
/// then share the log flush).
async fn completer<S: JobStore>(shared: Arc<Shared<S>>, mut rx: mpsc::Receiver<FinishRequest>) {
    let max = shared.settings.completion_batch;
    let in_flight = Arc::new(Semaphore::new(FLUSHES));
    loop {
        let first = tokio::select! {
            biased;
            item = rx.recv() => item,
            () = shared.closing.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { break };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break;
        };
        // Let jobs ending at the same moment queue their endings: one statement for all.
        tokio::task::yield_now().await;
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        if batch.len() < max / 4 {
            // A light load: one statement at a time batches best.
            flush(&shared, &batch).await;
            drop(permit);
        } else {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                flush(&shared, &batch).await;
                drop(permit);
            });
        }
    }
    // Wait for the flushes still in flight.
    let _ = in_flight
        .acquire_many(u32::try_from(FLUSHES).unwrap_or(1))
        .await;
}

/// Completion statements in flight at once.
const FLUSHES: usize = 8;

async fn flush<S: JobStore>(shared: &Shared<S>, batch: &[FinishRequest]) {
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=6 {
        match shared.queue.finish(batch).await {
            Ok(results) => {
                for result in results {
                    if let Err(e) = result {
                        tracing::info!(error = %e, "attempt outcome dropped");
                    }
                }
                return;
            }
            Err(e) if attempt < 6 => {
                tracing::warn!(error = %e, attempt, "cannot write completions; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(error = %e, "giving up on completions; their leases will expire");
            }
        }
    }
}

async fn heartbeat_loop<S: JobStore>(shared: Arc<Shared<S>>) {
    loop {
        record(&shared).await;
        tokio::select! {
            () = shared.halt.cancelled() => return,
            () = tokio::time::sleep(shared.settings.heartbeat) => {}
        }
        let leases: Vec<Lease> = shared.running.lock().values().map(|r| r.lease).collect();
        if leases.is_empty() {
            continue;
        }
        match shared.queue.renew(&leases, shared.settings.lease).await {
            Ok(states) => {
                let mut running = shared.running.lock();
                for state in states {
                    let Some(r) = running.get_mut(&state.lease.job_id) else {
                        continue;
                    };
                    if !state.held {
                        tracing::warn!(job = %state.lease.job_id, "lease lost; abandoning attempt");
                        r.abandoned = true;
                        r.token.cancel();
                    } else if state.cancel_requested {
                        r.cancel_requested = true;
                        r.token.cancel();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot renew leases"),
        }
    }
}

async fn record<S: JobStore>(shared: &Shared<S>) {
    let info = WorkerInfo {
        id: shared.id,
        name: shared.name.clone(),
        started_at: shared.started_at,
        last_heartbeat: shared.queue.now(),
        concurrency: shared.settings.concurrency,
        running: u32::try_from(shared.running.lock().len()).unwrap_or(u32::MAX),
    };
    if let Err(e) = shared.queue.store().record_worker(&info).await {
        tracing::warn!(error = %e, "cannot record worker heartbeat");
    }
}

async fn rescue_loop<S: JobStore>(shared: Arc<Shared<S>>) {
    loop {
        tokio::select! {
            () = shared.halt.cancelled() => return,
            () = tokio::time::sleep(shared.settings.rescue_interval) => {}
        }
        if let Err(e) = shared.queue.rescue_expired().await {
            tracing::warn!(error = %e, "lease rescue failed");
        }
    }
}

async fn cancel_watcher<S: JobStore>(shared: Arc<Shared<S>>) {
    let mut events = shared.queue.events();
    loop {
        let event = tokio::select! {
            () = shared.halt.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) if matches!(event.kind, JobEventKind::CancelRequested) => {
                if let Some(r) = shared.running.lock().get_mut(&event.job_id) {
                    r.cancel_requested = true;
                    r.token.cancel();
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
