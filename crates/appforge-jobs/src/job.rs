use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::{Error, JobId, JobStatus, Owner, Priority, Result, WorkerId};

/// Attempts a job gets unless its [`NewJob`] or the queue's retry policy says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
const MAX_KIND_LEN: usize = 64;
const MAX_DEDUPE_KEY_LEN: usize = 256;

/// A stored generation job: the seed's `generation_jobs` row plus what the queue needs.
///
/// The seed's `prompt` and `app_type` travel in [`payload`](Self::payload); `kind` names the
/// handler (`full_app`, `modify`, `plan_phases`, ...).
///
/// A job is in its submitter's personal space, or in an org's when [`org_id`](Self::org_id)
/// is set; [`owner`](Self::owner) says which, and the queue's scoped calls take that
/// [`Owner`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Job {
    /// The job's id.
    pub id: JobId,
    /// The user who submitted it. For a personal job (no [`org_id`](Self::org_id)) this user
    /// is also its owner, the only one who reads or cancels it; for an org's job it names the
    /// member who submitted it (per-user admission and fairness count the job for them).
    pub user_id: Uuid,
    /// The org whose space it is in; `None` for the submitter's personal space. Calls scoped
    /// to [`Owner::Org`] with this id read and cancel it, calls scoped to a user never do.
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// What to run: the name a handler is registered under.
    pub kind: String,
    /// Queue priority (larger first).
    pub priority: Priority,
    /// Where it is in its life.
    pub status: JobStatus,
    /// The handler's input.
    pub payload: Value,
    /// The handler's output, once completed.
    pub result: Option<Value>,
    /// The last error message (of a failed attempt, or the final one).
    pub error: Option<String>,
    /// Attempts started so far (0 before the first claim).
    pub attempt: u32,
    /// Attempts allowed in total.
    pub max_attempts: u32,
    /// Input tokens the model used, once completed.
    pub input_tokens: Option<u64>,
    /// Output tokens the model produced, once completed.
    pub output_tokens: Option<u64>,
    /// How long the last attempt ran, once finished.
    pub duration_ms: Option<u64>,
    /// When the job was enqueued.
    pub created_at: DateTime<Utc>,
    /// The earliest time it may (next) run.
    pub run_at: DateTime<Utc>,
    /// When the last attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal status.
    pub completed_at: Option<DateTime<Utc>>,
    /// The worker holding the lease while processing.
    pub lease_owner: Option<WorkerId>,
    /// When that lease runs out unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// The last progress the handler reported.
    pub progress: Option<Value>,
    /// Whether cancellation was asked for while it was running.
    pub cancel_requested: bool,
    /// The dedupe key it was enqueued with.
    pub dedupe_key: Option<String>,
}

impl Job {
    /// Whose space the job is in: [`Owner::Org`] when it has an org, else
    /// [`Owner::User`] of its submitter.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use appforge_jobs::{JobQueue, MemoryJobStore, NewJob, Owner};
    ///
    /// let queue = JobQueue::new(MemoryJobStore::new());
    /// let (user, org) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    /// let id = queue.enqueue(NewJob::new("full_app", user, serde_json::json!({})).in_org(org)).await?.id;
    /// let job = queue.get(Owner::Org(org), id).await?;
    /// assert_eq!(job.owner(), Owner::Org(org));
    /// assert_eq!(job.user_id, user, "the submitter");
    /// assert!(queue.get(user, id).await.unwrap_err().is_not_found(), "not personal");
    /// # Ok::<_, appforge_jobs::Error>(()) }).unwrap();
    /// ```
    #[must_use]
    pub fn owner(&self) -> Owner {
        Owner::of(self.user_id, self.org_id)
    }

    /// Whether the job is in `scope`'s space (every job when `scope` is `None`).
    pub(crate) fn in_scope(&self, scope: Option<Owner>) -> bool {
        scope.is_none_or(|owner| owner.owns(self.user_id, self.org_id))
    }

    /// The lease a worker holds on this job while running its current attempt, if any.
    #[must_use]
    pub fn lease(&self) -> Option<crate::Lease> {
        (self.status == JobStatus::Processing).then_some(())?;
        Some(crate::Lease {
            job_id: self.id,
            worker: self.lease_owner?,
            attempt: self.attempt,
        })
    }
}

/// A job to enqueue: in its submitter's personal space, or in an org's with
/// [`in_org`](Self::in_org).
///
/// ```
/// use appforge_jobs::{NewJob, Priority};
/// let (user, org) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
/// let job = NewJob::new("full_app", user, serde_json::json!({"prompt": "a todo app"}))
///     .priority(Priority::PRO)
///     .dedupe_key("user-1:todo")
///     .in_org(org);
/// assert_eq!(job.kind, "full_app");
/// assert_eq!(job.org_id, Some(org));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewJob {
    /// The handler to run.
    pub kind: String,
    /// The user submitting it: its owner unless [`org_id`](Self::org_id) is set.
    pub user_id: Uuid,
    /// The org whose space it goes into; `None` (the default) for the submitter's personal
    /// space.
    #[serde(default)]
    pub org_id: Option<Uuid>,
    /// Queue priority.
    pub priority: Priority,
    /// The handler's input.
    pub payload: Value,
    /// Attempts allowed; the queue's retry policy when `None`.
    pub max_attempts: Option<u32>,
    /// Do not run before this time; now when `None`.
    pub run_at: Option<DateTime<Utc>>,
    /// While a job with this key is pending or processing, enqueueing another returns it.
    pub dedupe_key: Option<String>,
    /// The job's id, chosen by the caller (see [`with_id`](Self::with_id)); a new one when
    /// `None`.
    #[serde(default)]
    pub id: Option<JobId>,
}

impl NewJob {
    /// A job of `kind` submitted by `user_id` into their personal space with `payload`, at
    /// [`Priority::FREE`].
    pub fn new(kind: impl Into<String>, user_id: Uuid, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            user_id,
            org_id: None,
            priority: Priority::FREE,
            payload,
            max_attempts: None,
            run_at: None,
            dedupe_key: None,
            id: None,
        }
    }

    /// Puts the job in `org`'s space instead of the submitter's personal one: calls scoped
    /// to [`Owner::Org`] of `org` read and cancel it, whoever submitted it, and the
    /// submitter's personal space does not see it. Who may submit into `org` is the host's
    /// decision, made before enqueueing.
    #[must_use]
    pub fn in_org(mut self, org: Uuid) -> Self {
        self.org_id = Some(org);
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: impl Into<Priority>) -> Self {
        self.priority = priority.into();
        self
    }

    /// Sets the attempts allowed.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Delays the first run until `at`.
    #[must_use]
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Gives the job the id `id` instead of a new one: for a caller that must name the job
    /// before it is enqueued (a quota reservation held by it, written in the same
    /// transaction). Enqueueing a second job with an id already taken fails.
    #[must_use]
    pub fn with_id(mut self, id: JobId) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the dedupe key.
    #[must_use]
    pub fn dedupe_key(mut self, key: impl Into<String>) -> Self {
        self.dedupe_key = Some(key.into());
        self
    }

    /// Checks the job before anything is written.
    pub(crate) fn validate(&self) -> Result<()> {
        let kind_ok = !self.kind.is_empty()
            && self.kind.len() <= MAX_KIND_LEN
            && self
                .kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
        if !kind_ok {
            return Err(Error::InvalidInput(format!(
                "job kind {:?} must be 1 to {MAX_KIND_LEN} characters of [A-Za-z0-9_.:-]",
                self.kind
            )));
        }
        if let Some(attempts) = self.max_attempts
            && !(1..=1000).contains(&attempts)
        {
            return Err(Error::InvalidInput(format!(
                "max_attempts must be between 1 and 1000, got {attempts}"
            )));
        }
        if let Some(key) = &self.dedupe_key
            && (key.is_empty() || key.len() > MAX_DEDUPE_KEY_LEN || key.contains('\0'))
        {
            return Err(Error::InvalidInput(format!(
                "dedupe key must be 1 to {MAX_DEDUPE_KEY_LEN} bytes without NUL"
            )));
        }
        if contains_nul(&self.payload) {
            return Err(Error::InvalidInput(
                "payload must not contain NUL characters".into(),
            ));
        }
        Ok(())
    }

    /// The stored record of this job, enqueued at `now`.
    pub(crate) fn into_job(self, now: DateTime<Utc>, default_attempts: u32) -> Job {
        Job {
            id: self.id.unwrap_or_default(),
            user_id: self.user_id,
            org_id: self.org_id,
            kind: self.kind,
            priority: self.priority,
            status: JobStatus::Pending,
            payload: self.payload,
            result: None,
            error: None,
            attempt: 0,
            max_attempts: self.max_attempts.unwrap_or(default_attempts),
            input_tokens: None,
            output_tokens: None,
            duration_ms: None,
            created_at: now,
            run_at: self.run_at.map_or(now, crate::time::trunc),
            started_at: None,
            completed_at: None,
            lease_owner: None,
            lease_expires_at: None,
            progress: None,
            cancel_requested: false,
            dedupe_key: self.dedupe_key,
        }
    }
}

/// PostgreSQL refuses NUL in `jsonb` text; refuse it everywhere so that backends agree.
pub(crate) fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The job's id: the new one, or the active job holding the same dedupe key.
    pub id: JobId,
    /// Whether an existing job was returned instead of a new one.
    pub deduplicated: bool,
}

/// Which of a space's jobs (a user's personal ones, or an org's) to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobFilter {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
}

impl JobFilter {
    /// Only jobs in `status`.
    #[must_use]
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only jobs of `kind`.
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }
}

/// A page request for [`JobQueue::list`](crate::JobQueue::list): newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page, 1 to 100.
    pub limit: u32,
    /// Continue after this cursor (from the previous page's [`Page::next`]).
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The first page of `limit` items.
    #[must_use]
    pub const fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// The page after `cursor`.
    #[must_use]
    pub fn after(limit: u32, cursor: Cursor) -> Self {
        Self {
            limit,
            after: Some(cursor),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if (1..=100).contains(&self.limit) {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "page limit must be between 1 and 100, got {}",
                self.limit
            )))
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(20)
    }
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl Page<Job> {
    /// The page from up to `limit + 1` jobs read newest first: the first `limit`, and a cursor
    /// after the last of them when there was one more.
    pub(crate) fn from_overfetch(mut items: Vec<Job>, limit: u32) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more {
            items.last().map(Cursor::of)
        } else {
            None
        };
        Self { items, next }
    }
}

/// An opaque position in a user's history: `(created_at, id)` of the last item seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) id: JobId,
}

impl Cursor {
    pub(crate) fn of(job: &Job) -> Self {
        Self {
            created_at: job.created_at,
            id: job.id,
        }
    }

    /// Whether `job` comes after this cursor in newest-first order.
    pub(crate) fn precedes(&self, job: &Job) -> bool {
        (job.created_at, job.id) < (self.created_at, self.id)
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            self.created_at.timestamp_micros(),
            self.id.as_uuid().simple()
        )
    }
}

impl FromStr for Cursor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidInput(format!("malformed page cursor {s:?}"));
        let (micros, id) = s.split_once('.').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        let id = id.parse::<JobId>().map_err(|_| bad())?;
        Ok(Self { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = Cursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: JobId::new(),
        };
        assert_eq!(cursor.to_string().parse::<Cursor>().unwrap(), cursor);
        for bad in ["", "12", "x.y", "12.not-a-uuid"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_problem() {
        let user = Uuid::new_v4();
        let err = NewJob::new("", user, Value::Null).validate().unwrap_err();
        assert!(err.to_string().contains("job kind"), "{err}");
        let err = NewJob::new("k", user, Value::Null)
            .max_attempts(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
        let err = NewJob::new("k", user, serde_json::json!({"a": ["x\0"]}))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        NewJob::new("full_app", user, serde_json::json!({"prompt": "hi"}))
            .dedupe_key("k")
            .validate()
            .unwrap();
    }
}
