//! The storage contract of the queue and its backends.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::outcome::TokenUsage;
use crate::{
    Enqueued, Job, JobEvent, JobFilter, JobId, Owner, Page, PageRequest, QueueStats, Result,
    WorkerId,
};

pub(crate) mod any;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
mod pg_notify;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// A worker's hold on one attempt of a running job. Every write about a running job is guarded
/// by all three fields: a worker whose lease was taken over cannot touch the job any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// The job.
    pub job_id: JobId,
    /// The worker holding it.
    pub worker: WorkerId,
    /// The attempt it runs.
    pub attempt: u32,
}

/// A request to claim runnable jobs.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The claiming worker; it becomes the lease owner.
    pub worker: WorkerId,
    /// Only these kinds (the handlers the worker has); every kind when `None`.
    pub kinds: Option<Vec<String>>,
    /// At most this many jobs (the worker's free slots).
    pub limit: u32,
    /// The current time: jobs with `run_at <= now` are runnable.
    pub now: DateTime<Utc>,
    /// The claimed leases' expiry.
    pub lease_until: DateTime<Utc>,
    /// Jobs submitted by these users are not claimed (users whose jobs the worker just
    /// deferred because they already run as many as they may); empty for none. It matches
    /// [`Job::user_id`], the submitter, whatever the job's space: an org's job counts for the
    /// member who submitted it.
    pub exclude_users: Vec<Uuid>,
}

/// How a running attempt ends.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Finish {
    /// `processing -> completed`.
    Complete {
        /// The result.
        result: Value,
        /// Input tokens.
        input_tokens: u64,
        /// Output tokens.
        output_tokens: u64,
    },
    /// `processing -> pending`, to run again at `run_at`.
    Retry {
        /// The next run.
        run_at: DateTime<Utc>,
        /// The attempt's error.
        error: String,
    },
    /// `processing -> failed`.
    Fail {
        /// The error.
        error: String,
        /// The tokens the attempt used before it failed, recorded on the job.
        tokens: Option<TokenUsage>,
    },
    /// `processing -> cancelled` (cancellation was requested).
    Cancel {
        /// The tokens the attempt used before it stopped, recorded on the job.
        tokens: Option<TokenUsage>,
    },
    /// `processing -> pending` now, the attempt given back (graceful shutdown).
    Release,
    /// `processing -> pending` at `run_at`, the attempt given back: the worker did not start
    /// it (see [`Admit::Defer`](crate::Admit::Defer)).
    Defer {
        /// When it may run again.
        run_at: DateTime<Utc>,
    },
}

/// One guarded write ending a running attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishRequest {
    /// The lease the writer holds.
    pub lease: Lease,
    /// The ending.
    pub finish: Finish,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// The state of one lease after a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseState {
    /// The lease.
    pub lease: Lease,
    /// Whether the worker still holds it (false: it was rescued or taken over).
    pub held: bool,
    /// Whether the job's owner asked to cancel it.
    pub cancel_requested: bool,
}

/// Retention: which finished (completed, failed, cancelled) jobs to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Delete finished jobs that completed longer ago than this.
    pub older_than: Option<Duration>,
    /// Keep at most this many finished jobs (the most recently completed).
    pub keep_latest: Option<u64>,
    /// Delete in batches of this many rows (keeps transactions short).
    pub batch_size: u32,
}

impl Default for Retention {
    /// Keep 30 days, no count limit, batches of 1000.
    fn default() -> Self {
        Self {
            older_than: Some(Duration::from_secs(30 * 24 * 3600)),
            keep_latest: None,
            batch_size: 1000,
        }
    }
}

/// A registered worker pool, as its heartbeats record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its id.
    pub id: WorkerId,
    /// A human-readable name (host and process).
    pub name: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_heartbeat: DateTime<Utc>,
    /// Its concurrency limit.
    pub concurrency: u32,
    /// Jobs it was running at the last heartbeat.
    pub running: u32,
}

/// What a store's listener hears from other processes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Notification {
    /// Jobs may have become runnable.
    Wake,
    /// Job events published by another process.
    Events(Vec<JobEvent>),
    /// The listener reconnected after losing its connection: notifications may have been
    /// missed, so workers should poll and subscribers resynchronise.
    Reconnected,
}

/// The stream of a store's cross-process notifications.
pub type Notifications = BoxStream<'static, Notification>;

/// Where jobs live. Implemented by [`MemoryJobStore`](crate::MemoryJobStore),
/// `SqliteJobStore`, `PgJobStore` and [`AnyJobStore`](crate::AnyJobStore).
///
/// The methods are the queue's primitives; applications use [`JobQueue`](crate::JobQueue).
/// Writes about a running job are guarded by its [`Lease`]; every transition follows
/// [`Transition`](crate::Transition).
pub trait JobStore: Clone + Send + Sync + fmt::Debug + 'static {
    /// Inserts new pending jobs (already validated). A job whose dedupe key is held by an
    /// active job is not inserted; its entry names the active job instead.
    fn insert(&self, jobs: Vec<Job>) -> impl Future<Output = Result<Vec<Enqueued>>> + Send;

    /// One job by id, whoever owns it.
    fn get(&self, id: JobId) -> impl Future<Output = Result<Option<Job>>> + Send;

    /// The jobs in `owner`'s space, newest first: for [`Owner::User`] the user's personal
    /// jobs (`user_id` is theirs and `org_id` is unset; not their org jobs), for
    /// [`Owner::Org`] the org's jobs, whoever submitted them. The scope is part of the query.
    fn list(
        &self,
        owner: Owner,
        filter: &JobFilter,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Job>>> + Send;

    /// Every space's jobs, newest first, for operators: `filter` as in [`list`](Self::list),
    /// and with `finished_since`, only jobs that reached a terminal status at or after it.
    fn list_all(
        &self,
        filter: &JobFilter,
        finished_since: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<Page<Job>>> + Send;

    /// Claims up to `limit` runnable jobs, highest priority first, then `run_at`, then id:
    /// `pending -> processing`, `attempt + 1`, leased to the worker.
    fn claim(&self, request: &ClaimRequest) -> impl Future<Output = Result<Vec<Job>>> + Send;

    /// Ends running attempts, each guarded by its lease. One result per request, in order:
    /// the updated job, or [`Error::LeaseLost`](crate::Error::LeaseLost) /
    /// [`Error::NotFound`](crate::Error::NotFound).
    fn finish(
        &self,
        batch: &[FinishRequest],
    ) -> impl Future<Output = Result<Vec<Result<Job>>>> + Send;

    /// Extends the leases still held until `until`.
    fn renew(
        &self,
        leases: &[Lease],
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<LeaseState>>> + Send;

    /// Stores a running job's progress, guarded by its lease.
    fn set_progress(
        &self,
        lease: &Lease,
        progress: &Value,
    ) -> impl Future<Output = Result<Job>> + Send;

    /// Cancels a job: a pending one at once, a running one by setting `cancel_requested` (its
    /// worker then ends it as cancelled). `owner` restricts it to a space, as in
    /// [`list`](Self::list): a job outside it is [`Error::NotFound`](crate::Error::NotFound),
    /// as a missing one is; `None` (operators) cancels any job.
    fn cancel(
        &self,
        id: JobId,
        owner: Option<Owner>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Job>> + Send;

    /// `failed | cancelled -> pending`, with fresh attempts: what the last run left (start
    /// time, tokens, duration, progress, result) is cleared, and the payload replaced when
    /// `payload` is given.
    fn requeue(
        &self,
        id: JobId,
        now: DateTime<Utc>,
        payload: Option<Value>,
    ) -> impl Future<Output = Result<Job>> + Send;

    /// Rescues running jobs whose lease expired before `now`: back to pending with the attempt
    /// spent, failed when attempts are spent, cancelled when cancellation was requested.
    fn rescue(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Job>>> + Send;

    /// Deletes finished jobs by `retention`, in batches; returns how many were deleted.
    fn prune(
        &self,
        retention: &Retention,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Replaces the payload and result of a finished (completed, failed or cancelled) job, to
    /// erase data it holds. `false` when there is no such finished job (nothing is written).
    fn redact(
        &self,
        id: JobId,
        payload: &Value,
        result: Option<&Value>,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Queue statistics; `live_workers` is left at 0 for the queue to fill.
    fn stats(
        &self,
        now: DateTime<Utc>,
        window: Duration,
    ) -> impl Future<Output = Result<QueueStats>> + Send;

    /// The queue's gauges: [`JobStore::stats`] without the finished jobs outside `window`.
    /// `depth` lists only pending and processing jobs, so a backend can answer from indexes
    /// whose size follows the live jobs and the window, not the history: a metrics scrape costs
    /// the same over a million finished jobs as over none. The default asks
    /// [`JobStore::stats`] and drops the finished statuses from `depth`.
    fn gauges(
        &self,
        now: DateTime<Utc>,
        window: Duration,
    ) -> impl Future<Output = Result<QueueStats>> + Send {
        async move {
            let mut stats = self.stats(now, window).await?;
            stats.depth.retain(|d| !d.status.is_terminal());
            Ok(stats)
        }
    }

    /// Records a worker pool's heartbeat.
    fn record_worker(&self, info: &WorkerInfo) -> impl Future<Output = Result<()>> + Send;

    /// Forgets a worker pool that stopped cleanly.
    fn remove_worker(&self, id: WorkerId) -> impl Future<Output = Result<()>> + Send;

    /// Every registered worker pool.
    fn workers(&self) -> impl Future<Output = Result<Vec<WorkerInfo>>> + Send;

    /// Publishes events to other processes (a no-op for single-process stores).
    fn publish(&self, events: &[JobEvent]) -> impl Future<Output = Result<()>> + Send {
        let _ = events;
        async { Ok(()) }
    }

    /// Notes that this process subscribes to the job's events, so that other processes send
    /// them (a no-op for single-process stores).
    fn watch(&self, id: JobId) -> impl Future<Output = Result<()>> + Send {
        let _ = id;
        async { Ok(()) }
    }

    /// Undoes [`watch`](Self::watch).
    fn unwatch(&self, id: JobId) -> impl Future<Output = Result<()>> + Send {
        let _ = id;
        async { Ok(()) }
    }

    /// Wakes idle workers in other processes (a no-op for single-process stores).
    fn wake(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Listens to other processes; `None` when the store has no such channel (workers poll).
    fn listen(&self) -> impl Future<Output = Result<Option<Notifications>>> + Send {
        async { Ok(None) }
    }
}
