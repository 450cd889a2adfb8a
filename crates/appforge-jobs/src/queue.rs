use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use appforge_core::{SharedClock, SystemClock};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::event::EventBus;
use crate::store::{
    ClaimRequest, FinishRequest, JobStore, Lease, LeaseState, Notification, Retention,
};
use crate::subscription::JobSubscription;
use crate::time::{add, trunc};
use crate::{
    AnyJobStore, Enqueued, Error, Job, JobEvent, JobEventKind, JobFilter, JobId, JobStatus, NewJob,
    Owner, Page, PageRequest, QueueStats, Result, RetryPolicy, WorkerId,
};

/// Called once for every terminal transition this process writes (completed, failed,
/// cancelled), with the job as written. The host commits or refunds quota here. It runs on the
/// writer's task: keep it quick (spawn for anything slow).
pub type TerminalHook = Arc<dyn Fn(&Job) + Send + Sync>;

/// The queue: enqueue, read, cancel and watch jobs. A cheap `Clone` handle over a store.
///
/// A job is in its submitter's personal space or in an org's ([`NewJob::in_org`]). Every
/// scoped call (`get`, `list`, `cancel`, `subscribe`, `redact_finished`) takes the space as
/// `impl Into<`[`Owner`]`>`: a bare user id `Uuid` is [`Owner::User`], the user's personal
/// space (their org jobs are not in it), and [`Owner::Org`] is an org's space, whoever
/// submitted the jobs. A job outside the space is [`Error::NotFound`], as a missing one is.
/// Who may act for an org is the host's decision, made before calling; the `*_any` and
/// `list_all` calls are for operators and see every space.
///
/// Workers run jobs through a [`WorkerPool`](crate::WorkerPool) built on the same queue.
pub struct JobQueue<S = AnyJobStore> {
    inner: Arc<Inner<S>>,
}

struct Inner<S> {
    store: S,
    clock: SharedClock,
    retry: RetryPolicy,
    bus: EventBus,
    hooks: Vec<TerminalHook>,
    subscription_poll: Duration,
    wake: watch::Sender<u64>,
    listening: AtomicBool,
}

impl<S> Clone for JobQueue<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for JobQueue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobQueue")
            .field("store", &self.inner.store)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JobQueue`].
pub struct JobQueueBuilder<S> {
    store: S,
    clock: SharedClock,
    retry: RetryPolicy,
    bus_capacity: usize,
    subscription_poll: Duration,
    hooks: Vec<TerminalHook>,
}

impl<S: fmt::Debug> fmt::Debug for JobQueueBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobQueueBuilder")
            .field("store", &self.store)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl<S: JobStore> JobQueueBuilder<S> {
    /// The clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The retry policy (default: 3 attempts, backoff from 5 s with full jitter).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Events buffered per in-process receiver before a slow one lags (default 4096).
    #[must_use]
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.bus_capacity = capacity;
        self
    }

    /// How often an idle subscription re-reads its job from the store, the fallback when
    /// events from another process cannot arrive (default 2 s).
    #[must_use]
    pub fn subscription_poll(mut self, every: Duration) -> Self {
        self.subscription_poll = every;
        self
    }

    /// Adds a hook called for every terminal transition this process writes.
    #[must_use]
    pub fn on_terminal(mut self, hook: impl Fn(&Job) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// The queue.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the subscription poll interval is zero.
    pub fn build(self) -> Result<JobQueue<S>> {
        if self.subscription_poll.is_zero() {
            return Err(Error::Config(
                "subscription poll interval must be positive".into(),
            ));
        }
        Ok(JobQueue {
            inner: Arc::new(Inner {
                store: self.store,
                clock: self.clock,
                retry: self.retry,
                bus: EventBus::new(self.bus_capacity),
                hooks: self.hooks,
                subscription_poll: self.subscription_poll,
                wake: watch::channel(0).0,
                listening: AtomicBool::new(false),
            }),
        })
    }
}

impl<S: JobStore> JobQueue<S> {
    /// A queue over `store` with the system clock and default settings.
    pub fn new(store: S) -> Self {
        Self::builder(store)
            .build()
            .expect("the default settings are valid")
    }

    /// A builder over `store`.
    pub fn builder(store: S) -> JobQueueBuilder<S> {
        JobQueueBuilder {
            store,
            clock: SystemClock::shared(),
            retry: RetryPolicy::default(),
            bus_capacity: 4096,
            subscription_poll: Duration::from_secs(2),
            hooks: Vec::new(),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        trunc(self.inner.clock.now())
    }

    /// Enqueues a job, or returns the active job holding its dedupe key.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a malformed job (nothing is written); store errors.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let mut out = self.enqueue_many(vec![job]).await?;
        out.pop()
            .ok_or_else(|| Error::Corrupt("the store lost an enqueue".into()))
    }

    /// Enqueues a typed job submitted by `user` into their personal space: `args` under its
    /// kind [`A::KIND`](crate::JobArgs::KIND), as [`NewJob::from_args`] builds it (for a
    /// priority, a delay or a dedupe key, build that and [`enqueue`](Self::enqueue) it). For
    /// an org's space, [`enqueue_args_as`](Self::enqueue_args_as).
    ///
    /// # Errors
    ///
    /// As [`enqueue`](Self::enqueue); [`Error::InvalidInput`] when the arguments do not
    /// serialise.
    pub async fn enqueue_args<A: crate::JobArgs>(&self, user: Uuid, args: &A) -> Result<Enqueued> {
        self.enqueue_args_as(user, None, args).await
    }

    /// Enqueues a typed job submitted by `user` into `org`'s space (`None`: the user's
    /// personal space, as [`enqueue_args`](Self::enqueue_args)). The job's owner is
    /// [`Owner::of(user, org)`](Owner::of); `user` stays recorded as its submitter
    /// ([`Job::user_id`]), whom per-user admission counts it for.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use appforge_jobs::{JobArgs, JobQueue, MemoryJobStore, Owner};
    /// # #[derive(serde::Serialize, serde::Deserialize)]
    /// # struct FullApp { prompt: String }
    /// # impl JobArgs for FullApp { const KIND: &'static str = "full_app"; }
    ///
    /// let queue = JobQueue::new(MemoryJobStore::new());
    /// let (user, org) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    /// let args = FullApp { prompt: "a team wiki".into() };
    /// let id = queue.enqueue_args_as(user, Some(org), &args).await?.id;
    /// assert_eq!(queue.get(Owner::Org(org), id).await?.user_id, user);
    /// # Ok::<_, appforge_jobs::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`enqueue_args`](Self::enqueue_args).
    pub async fn enqueue_args_as<A: crate::JobArgs>(
        &self,
        user: Uuid,
        org: Option<Uuid>,
        args: &A,
    ) -> Result<Enqueued> {
        let mut job = NewJob::from_args(user, args)?;
        job.org_id = org;
        self.enqueue(job).await
    }

    /// Enqueues jobs in one write. All are validated first: one bad job rejects the batch.
    ///
    /// # Errors
    ///
    /// As [`enqueue`](Self::enqueue).
    pub async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        let jobs = self.prepare(jobs)?;
        let now = jobs.first().map_or_else(|| self.now(), |j| j.created_at);
        let enqueued = self.inner.store.insert(jobs.clone()).await?;
        let events: Vec<JobEvent> = jobs
            .iter()
            .zip(&enqueued)
            .filter(|(_, e)| !e.deduplicated)
            .map(|(job, _)| JobEvent::of(job, now, JobEventKind::Enqueued))
            .collect();
        if !events.is_empty() {
            self.wake_local();
            self.emit(events, &[]).await;
        }
        Ok(enqueued)
    }

    /// Validates new jobs and builds their records, stamped now.
    pub(crate) fn prepare(&self, jobs: Vec<NewJob>) -> Result<Vec<Job>> {
        for job in &jobs {
            job.validate()?;
        }
        let now = self.now();
        let default_attempts = self.inner.retry.attempts();
        Ok(jobs
            .into_iter()
            .map(|j| j.into_job(now, default_attempts))
            .collect())
    }

    /// The job, if it is in `owner`'s space: a user id (or [`Owner::User`]) reads the user's
    /// personal jobs, [`Owner::Org`] the org's jobs whoever submitted them.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it does not exist or is in another space (another user's, an
    /// org's for a user, the submitter's personal one for an org).
    pub async fn get(&self, owner: impl Into<Owner>, id: JobId) -> Result<Job> {
        let owner = owner.into();
        self.get_any(id).await.and_then(|job| {
            if job.in_scope(Some(owner)) {
                Ok(job)
            } else {
                Err(Error::NotFound(id))
            }
        })
    }

    /// The job, whoever owns it (for operators and workers).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when it does not exist.
    pub async fn get_any(&self, id: JobId) -> Result<Job> {
        self.inner.store.get(id).await?.ok_or(Error::NotFound(id))
    }

    /// The job history of `owner`'s space, newest first: a user id (or [`Owner::User`])
    /// lists the user's personal jobs (not their org jobs), [`Owner::Org`] the org's jobs,
    /// whoever submitted them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a page limit outside 1 to 100; store errors.
    pub async fn list(
        &self,
        owner: impl Into<Owner>,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        page.validate()?;
        self.inner.store.list(owner.into(), filter, page).await
    }

    /// Every space's jobs, newest first (for operators): `filter` by status and kind and, with
    /// `finished_since`, only jobs that reached a terminal status at or after that time.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use appforge_jobs::{JobFilter, JobQueue, JobStatus, MemoryJobStore, NewJob, PageRequest};
    /// let queue = JobQueue::new(MemoryJobStore::new());
    /// for _ in 0..3 {
    ///     queue.enqueue(NewJob::new("full_app", uuid::Uuid::new_v4(), serde_json::json!({}))).await?;
    /// }
    /// let pending = JobFilter::default().status(JobStatus::Pending);
    /// let page = queue.list_all(&pending, None, &PageRequest::first(2)).await?;
    /// assert_eq!(page.items.len(), 2);
    /// let rest = queue.list_all(&pending, None, &PageRequest::after(2, page.next.unwrap())).await?;
    /// assert_eq!(rest.items.len(), 1);
    /// # Ok::<_, appforge_jobs::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a page limit outside 1 to 100; store errors.
    pub async fn list_all(
        &self,
        filter: &JobFilter,
        finished_since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<Job>> {
        page.validate()?;
        self.inner
            .store
            .list_all(filter, finished_since, page)
            .await
    }

    /// Cancels a job in `owner`'s space (as in [`get`](Self::get)): a pending job at once; a
    /// running one is asked to stop (its handler's cancellation token fires) and ends
    /// cancelled. Returns the job after the write.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when not in that space; [`Error::IllegalTransition`] when finished.
    pub async fn cancel(&self, owner: impl Into<Owner>, id: JobId) -> Result<Job> {
        self.cancel_inner(Some(owner.into()), id).await
    }

    /// Cancels any job (for operators).
    ///
    /// # Errors
    ///
    /// As [`cancel`](Self::cancel).
    pub async fn cancel_any(&self, id: JobId) -> Result<Job> {
        self.cancel_inner(None, id).await
    }

    async fn cancel_inner(&self, owner: Option<Owner>, id: JobId) -> Result<Job> {
        let now = self.now();
        let job = self.inner.store.cancel(id, owner, now).await?;
        let event = JobEvent::after_write(&job, now, JobEventKind::Cancelled);
        let terminal: &[Job] = if job.status.is_terminal() {
            std::slice::from_ref(&job)
        } else {
            &[]
        };
        self.emit(vec![event], terminal).await;
        Ok(job)
    }

    /// Runs a failed or cancelled job again with fresh attempts (for operators). What the last
    /// run left (its start time, tokens, duration, progress and result) is cleared, so that
    /// the job then describes the new run only.
    ///
    /// # Errors
    ///
    /// [`Error::IllegalTransition`] unless the job failed or was cancelled.
    pub async fn retry(&self, id: JobId) -> Result<Job> {
        self.requeue(id, None).await
    }

    /// Runs a failed or cancelled job again with fresh attempts and a new payload (for
    /// operators: a host that pays for each run with a quota reservation names the new one
    /// in the payload).
    ///
    /// # Errors
    ///
    /// As [`retry`](Self::retry); [`Error::InvalidInput`] for a payload holding NUL
    /// characters.
    pub async fn retry_with_payload(&self, id: JobId, payload: Value) -> Result<Job> {
        if crate::job::contains_nul(&payload) {
            return Err(Error::InvalidInput(
                "payload must not contain NUL characters".into(),
            ));
        }
        self.requeue(id, Some(payload)).await
    }

    async fn requeue(&self, id: JobId, payload: Option<Value>) -> Result<Job> {
        let now = self.now();
        let job = self.inner.store.requeue(id, now, payload).await?;
        self.wake_local();
        self.emit(
            vec![JobEvent::after_write(&job, now, JobEventKind::Requeued)],
            &[],
        )
        .await;
        Ok(job)
    }

    /// Rescues running jobs whose lease expired (their worker died): they return to pending,
    /// or fail when their attempts are spent. Worker pools call this periodically.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn rescue_expired(&self) -> Result<Vec<Job>> {
        let now = self.now();
        let jobs = self.inner.store.rescue(now, 1000).await?;
        if !jobs.is_empty() {
            tracing::warn!(count = jobs.len(), "rescued jobs whose lease expired");
            let events = jobs
                .iter()
                .map(|j| JobEvent::after_write(j, now, JobEvent::retry_of(j)))
                .collect();
            let terminal: Vec<Job> = jobs
                .iter()
                .filter(|j| j.status.is_terminal())
                .cloned()
                .collect();
            self.wake_local();
            self.emit(events, &terminal).await;
        }
        Ok(jobs)
    }

    /// Deletes finished jobs by `retention`; returns how many.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn prune(&self, retention: &Retention) -> Result<u64> {
        if retention.batch_size == 0 {
            return Err(Error::InvalidInput(
                "retention batch size must be positive".into(),
            ));
        }
        self.inner.store.prune(retention, self.now()).await
    }

    /// Forgets the registered worker pools silent for longer than `after`: pools that stopped
    /// without a clean shutdown (killed, crashed), whose jobs' leases expired and were rescued
    /// long ago. They stop raising [`Alert::WorkerSilent`](crate::Alert::WorkerSilent).
    /// Returns how many.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn forget_silent_workers(&self, after: Duration) -> Result<u64> {
        let cutoff = crate::time::sub(self.now(), after);
        let mut forgotten = 0;
        for worker in self.inner.store.workers().await? {
            if worker.last_heartbeat < cutoff {
                self.inner.store.remove_worker(worker.id).await?;
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    /// Erases data from the finished jobs of `owner`'s space (as in [`list`](Self::list): a
    /// user id is the user's personal jobs, [`Owner::Org`] an org's): `redact` is handed each finished job's
    /// payload and result, changes them in place and says whether it did; the changed ones are
    /// written back. Pending and running jobs are left alone. Returns how many jobs changed.
    ///
    /// For a host that must forget what a job held (the files of an app the user deleted).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use appforge_jobs::{JobQueue, MemoryJobStore, NewJob};
    /// use serde_json::json;
    ///
    /// let queue = JobQueue::new(MemoryJobStore::new());
    /// let user = uuid::Uuid::new_v4();
    /// let job = queue.enqueue(NewJob::new("full_app", user, json!({ "prompt": "x" }))).await?;
    /// queue.cancel(user, job.id).await?;
    /// let changed = queue
    ///     .redact_finished(user, |payload, _result| {
    ///         payload.as_object_mut().and_then(|p| p.remove("prompt")).is_some()
    ///     })
    ///     .await?;
    /// assert_eq!(changed, 1);
    /// assert_eq!(queue.get(user, job.id).await?.payload, json!({}));
    /// # Ok::<_, appforge_jobs::Error>(()) }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Store errors (jobs changed before the error stay changed).
    pub async fn redact_finished(
        &self,
        owner: impl Into<Owner>,
        mut redact: impl FnMut(&mut Value, &mut Option<Value>) -> bool + Send,
    ) -> Result<u64> {
        const PAGE: u32 = 100;
        let owner = owner.into();
        let mut changed = 0;
        let mut page = PageRequest::first(PAGE);
        loop {
            let jobs = self
                .inner
                .store
                .list(owner, &JobFilter::default(), &page)
                .await?;
            for mut job in jobs.items {
                if !job.status.is_terminal() || !redact(&mut job.payload, &mut job.result) {
                    continue;
                }
                if self
                    .inner
                    .store
                    .redact(job.id, &job.payload, job.result.as_ref())
                    .await?
                {
                    changed += 1;
                }
            }
            match jobs.next {
                Some(cursor) => page = PageRequest::after(PAGE, cursor),
                None => return Ok(changed),
            }
        }
    }

    /// Queue statistics over the last 5 minutes; live workers are those that heartbeated
    /// within `3 x` their interval (30 s).
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn stats(&self) -> Result<QueueStats> {
        self.stats_over(Duration::from_secs(300), Duration::from_secs(30))
            .await
    }

    /// Queue statistics over `window`; workers silent for longer than `stale_after` are not
    /// counted as live.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn stats_over(&self, window: Duration, stale_after: Duration) -> Result<QueueStats> {
        let now = self.now();
        let stats = self.inner.store.stats(now, window).await?;
        self.with_live_workers(stats, now, stale_after).await
    }

    /// The queue's gauges, for metrics scrapes: [`JobQueue::stats`] with `depth` limited to
    /// pending and processing jobs. The SQL stores answer it from indexes that hold only live
    /// jobs and the last 5 minutes of finished ones, so its cost does not grow with the history.
    ///
    /// # Errors
    ///
    /// Store errors.
    pub async fn gauges(&self) -> Result<QueueStats> {
        let now = self.now();
        let stats = self
            .inner
            .store
            .gauges(now, Duration::from_secs(300))
            .await?;
        self.with_live_workers(stats, now, Duration::from_secs(30))
            .await
    }

    async fn with_live_workers(
        &self,
        mut stats: QueueStats,
        now: DateTime<Utc>,
        stale_after: Duration,
    ) -> Result<QueueStats> {
        let cutoff = crate::time::sub(now, stale_after);
        let live = self
            .inner
            .store
            .workers()
            .await?
            .iter()
            .filter(|w| w.last_heartbeat >= cutoff)
            .count();
        stats.live_workers = u64::try_from(live).unwrap_or(u64::MAX);
        Ok(stats)
    }

    /// Watches a job in `owner`'s space (as in [`get`](Self::get)): its current state first
    /// (a snapshot), then live events, ending after the terminal one.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when not in that space.
    pub async fn subscribe(&self, owner: impl Into<Owner>, id: JobId) -> Result<JobSubscription> {
        self.ensure_listening().await;
        // Subscribe before reading so that nothing between the read and the first event is lost.
        let rx = self.inner.bus.subscribe();
        let mut job = self.get(owner, id).await?;
        if !job.status.is_terminal() {
            // Watch, then read again: an event published between the first read and the
            // watch would not have crossed processes.
            self.inner.store.watch(id).await?;
            job = self.get_any(id).await?;
        }
        Ok(JobSubscription::new(
            self.clone(),
            job,
            rx,
            self.inner.subscription_poll,
        ))
    }

    /// Every job event this process sees (its own, and on PostgreSQL other processes'), for
    /// dashboards and hosts. A receiver that lags loses the oldest events.
    pub fn events(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.bus.subscribe()
    }

    /// Starts relaying other processes' notifications (PostgreSQL), once.
    pub(crate) async fn ensure_listening(&self) {
        if self.inner.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let stream = match self.inner.store.listen().await {
            Ok(Some(stream)) => stream,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for job notifications; polling only");
                self.inner.listening.store(false, Ordering::SeqCst);
                return;
            }
        };
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut stream = stream;
            loop {
                // Wake up now and then to notice that the queue is gone.
                let note = tokio::select! {
                    note = stream.next() => note,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {
                        if weak.strong_count() == 0 { break }
                        continue;
                    }
                };
                let Some(note) = note else { break };
                let Some(inner) = weak.upgrade() else { break };
                match note {
                    Notification::Wake | Notification::Reconnected => {
                        inner.wake.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    Notification::Events(events) => {
                        for event in events {
                            inner.bus.send(event);
                        }
                    }
                }
            }
        });
    }

    /// Wakes this process's idle workers to claim at once: after a transaction that
    /// enqueued jobs on a connection of the caller's
    /// ([`enqueue_in_sqlite`](Self::enqueue_in_sqlite)) has committed. (On PostgreSQL the
    /// commit itself wakes the workers of every process.)
    pub fn wake_workers(&self) {
        self.wake_local();
    }

    pub(crate) fn wake_local(&self) {
        self.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(crate) fn wakes(&self) -> watch::Receiver<u64> {
        self.inner.wake.subscribe()
    }

    /// Publishes events here and to other processes, then runs the terminal hooks.
    async fn emit(&self, events: Vec<JobEvent>, terminal: &[Job]) {
        for hook in &self.inner.hooks {
            for job in terminal {
                hook(job);
            }
        }
        if let Err(e) = self.inner.store.publish(&events).await {
            tracing::warn!(error = %e, "cannot publish job events to other processes");
        }
        for event in events {
            self.inner.bus.send(event);
        }
    }

    // Worker-facing primitives.

    pub(crate) async fn claim(
        &self,
        worker: WorkerId,
        kinds: Option<Vec<String>>,
        limit: u32,
        lease: Duration,
        exclude_users: Vec<Uuid>,
    ) -> Result<Vec<Job>> {
        let now = self.now();
        let request = ClaimRequest {
            worker,
            kinds,
            limit,
            now,
            lease_until: add(now, lease),
            exclude_users,
        };
        let jobs = self.inner.store.claim(&request).await?;
        if !jobs.is_empty() {
            let events = jobs
                .iter()
                .map(|j| JobEvent::after_write(j, now, JobEventKind::Released))
                .collect();
            self.emit(events, &[]).await;
        }
        Ok(jobs)
    }

    /// Writes a batch of attempt endings; returns one result per request.
    pub(crate) async fn finish(&self, batch: &[FinishRequest]) -> Result<Vec<Result<Job>>> {
        let results = self.inner.store.finish(batch).await?;
        let now = self.now();
        let mut events = Vec::with_capacity(results.len());
        let mut terminal = Vec::new();
        let mut requeued = false;
        for (request, result) in batch.iter().zip(&results) {
            if let Ok(job) = result {
                let pending = match request.finish {
                    crate::Finish::Release | crate::Finish::Defer { .. } => JobEventKind::Released,
                    _ => JobEvent::retry_of(job),
                };
                requeued |= job.status == JobStatus::Pending;
                events.push(JobEvent::after_write(job, now, pending));
                if job.status.is_terminal() {
                    terminal.push(job.clone());
                }
            }
        }
        if requeued {
            self.wake_local();
        }
        self.emit(events, &terminal).await;
        Ok(results)
    }

    pub(crate) async fn renew(&self, leases: &[Lease], lease: Duration) -> Result<Vec<LeaseState>> {
        let until = add(self.now(), lease);
        self.inner.store.renew(leases, until).await
    }

    pub(crate) async fn report_progress(&self, lease: &Lease, progress: Value) -> Result<()> {
        let job = self.inner.store.set_progress(lease, &progress).await?;
        let event = JobEvent::of(&job, self.now(), JobEventKind::Progress { progress });
        self.emit(vec![event], &[]).await;
        Ok(())
    }
}
