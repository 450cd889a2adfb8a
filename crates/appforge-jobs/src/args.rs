//! Typed jobs: arguments that name their kind.

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{Error, Job, NewJob, Priority, Result};

/// A job's arguments as a type that names its kind: enqueue it with
/// [`JobQueue::enqueue_args`](crate::JobQueue::enqueue_args) (or
/// [`NewJob::from_args`]) and register its worker with
/// [`WorkerPoolBuilder::handle`](crate::WorkerPoolBuilder::handle), which decodes the payload
/// back into the type.
///
/// The arguments travel as the job's JSON payload, so string kinds and raw JSON
/// ([`NewJob::new`], [`WorkerPoolBuilder::handler`](crate::WorkerPoolBuilder::handler)) see
/// the same jobs: a dynamic host can enqueue `{"prompt": "..."}` under `"full_app"` and a typed
/// worker runs it.
///
/// ```
/// use appforge_jobs::{JobArgs, NewJob, Priority};
/// use serde::{Deserialize, Serialize};
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
/// let job = NewJob::from_args(uuid::Uuid::new_v4(), &FullApp { prompt: "a todo app".into() })?
///     .priority(Priority::PRO);
/// assert_eq!(job.kind, "full_app");
/// assert_eq!(job.payload, serde_json::json!({ "prompt": "a todo app" }));
/// # Ok::<_, appforge_jobs::Error>(())
/// ```
pub trait JobArgs: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The job kind these arguments are enqueued under and the handler is registered for.
    const KIND: &'static str;

    /// The priority a job of these arguments is enqueued at (default [`Priority::FREE`]);
    /// [`NewJob::priority`] overrides it.
    fn priority(&self) -> Priority {
        Priority::FREE
    }

    /// The attempts a job of these arguments gets (default `None`: the queue's retry
    /// policy); [`NewJob::max_attempts`] overrides it.
    fn max_attempts(&self) -> Option<u32> {
        None
    }
}

impl NewJob {
    /// A job of kind [`A::KIND`](JobArgs::KIND) submitted by `user_id` into their personal
    /// space (then [`in_org`](NewJob::in_org) for an org's) whose payload is `args`
    /// serialised, at the arguments' [`priority`](JobArgs::priority) and
    /// [`max_attempts`](JobArgs::max_attempts).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the arguments do not serialise to JSON (a map with
    /// non-string keys, a failing `Serialize` impl).
    pub fn from_args<A: JobArgs>(user_id: Uuid, args: &A) -> Result<Self> {
        let payload = serde_json::to_value(args).map_err(|e| {
            Error::InvalidInput(format!(
                "arguments of job kind {:?} do not serialise: {e}",
                A::KIND
            ))
        })?;
        let mut job = Self::new(A::KIND, user_id, payload).priority(args.priority());
        job.max_attempts = args.max_attempts();
        Ok(job)
    }
}

impl Job {
    /// The job's payload decoded as `A`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the job is not of kind [`A::KIND`](JobArgs::KIND) or its
    /// payload does not decode (the message names the kind and the serde error).
    pub fn args<A: JobArgs>(&self) -> Result<A> {
        if self.kind != A::KIND {
            return Err(Error::InvalidInput(format!(
                "job {} is of kind {:?}, not {:?}",
                self.id,
                self.kind,
                A::KIND
            )));
        }
        decode::<A>(&self.payload).map_err(Error::InvalidInput)
    }
}

/// Decodes a payload as `A`; the error names the kind and the serde error.
pub(crate) fn decode<A: JobArgs>(payload: &serde_json::Value) -> Result<A, String> {
    A::deserialize(payload)
        .map_err(|e| format!("payload of job kind {:?} does not decode: {e}", A::KIND))
}
