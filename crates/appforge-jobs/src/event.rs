use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{Job, JobId, JobStatus, Owner, WorkerId};

/// Something that happened to a job: a transition, a progress report, or (first on every
/// subscription) a snapshot of its current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobEvent {
    /// The job.
    pub job_id: JobId,
    /// The user who submitted it ([`Job::user_id`]).
    pub user_id: Uuid,
    /// The org whose space it is in ([`Job::org_id`]); `None` for a personal job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<Uuid>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The job's status after it.
    pub status: JobStatus,
    /// The job's attempt after it.
    pub attempt: u32,
    /// What happened.
    #[serde(flatten)]
    pub kind: JobEventKind,
}

/// What a [`JobEvent`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobEventKind {
    /// The job's full current state (first on a subscription, and after a resync).
    Snapshot {
        /// The job.
        job: Box<Job>,
    },
    /// The job was enqueued.
    Enqueued,
    /// A worker claimed it and started an attempt.
    Started {
        /// The worker.
        worker: WorkerId,
    },
    /// The handler reported progress (a [`Progress`](crate::Progress) as JSON).
    Progress {
        /// The report.
        progress: Value,
    },
    /// Its owner asked to cancel it while it runs.
    CancelRequested,
    /// An attempt failed; another runs at `run_at`.
    RetryScheduled {
        /// The next run.
        run_at: DateTime<Utc>,
        /// The attempt's error.
        error: String,
    },
    /// A worker shutting down gave it back; it runs again soon.
    Released,
    /// An operator put a finished job back in the queue.
    Requeued,
    /// It completed (the result is on the job: [`JobQueue::get`](crate::JobQueue::get)).
    Completed {
        /// Input tokens.
        input_tokens: Option<u64>,
        /// Output tokens.
        output_tokens: Option<u64>,
        /// The last attempt's run time.
        duration_ms: Option<u64>,
    },
    /// It failed for good.
    Failed {
        /// The error.
        error: String,
    },
    /// It was cancelled.
    Cancelled,
}

impl JobEvent {
    /// Whose space the job is in ([`Job::owner`]): a host relaying
    /// [`JobQueue::events`](crate::JobQueue::events) to clients filters by it.
    #[must_use]
    pub fn owner(&self) -> Owner {
        Owner::of(self.user_id, self.org_id)
    }

    /// An event about `job` (in its state after the event) at `at`.
    pub(crate) fn of(job: &Job, at: DateTime<Utc>, kind: JobEventKind) -> Self {
        Self {
            job_id: job.id,
            user_id: job.user_id,
            org_id: job.org_id,
            at,
            status: job.status,
            attempt: job.attempt,
            kind,
        }
    }

    /// A snapshot of `job`.
    pub(crate) fn snapshot(job: &Job, at: DateTime<Utc>) -> Self {
        Self::of(
            job,
            at,
            JobEventKind::Snapshot {
                job: Box::new(job.clone()),
            },
        )
    }

    /// The event a store write left `job` in; `pending` says what a return to pending means
    /// (a scheduled retry, a release or a requeue).
    pub(crate) fn after_write(job: &Job, at: DateTime<Utc>, pending: JobEventKind) -> Self {
        let kind = match job.status {
            JobStatus::Pending => pending,
            JobStatus::Processing if job.cancel_requested => JobEventKind::CancelRequested,
            JobStatus::Processing => JobEventKind::Started {
                worker: job.lease_owner.unwrap_or_default(),
            },
            JobStatus::Completed => JobEventKind::Completed {
                input_tokens: job.input_tokens,
                output_tokens: job.output_tokens,
                duration_ms: job.duration_ms,
            },
            JobStatus::Failed => JobEventKind::Failed {
                error: job.error.clone().unwrap_or_default(),
            },
            JobStatus::Cancelled => JobEventKind::Cancelled,
        };
        Self::of(job, at, kind)
    }

    /// A scheduled retry of `job`.
    pub(crate) fn retry_of(job: &Job) -> JobEventKind {
        JobEventKind::RetryScheduled {
            run_at: job.run_at,
            error: job.error.clone().unwrap_or_default(),
        }
    }

    /// Whether the job is finished after this event (no more events follow).
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

/// The in-process fan-out of job events. Sending never blocks; a receiver that falls behind
/// loses the oldest events and is told so (subscriptions then resynchronise from the store).
#[derive(Debug, Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<JobEvent>,
}

impl EventBus {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::channel(capacity.max(16)).0,
        }
    }

    pub(crate) fn send(&self, event: JobEvent) {
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.tx.subscribe()
    }
}
