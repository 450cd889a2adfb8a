//! The generation flow as a service: reserve quota, enqueue the job, run the llm pipeline with
//! its progress as job events, save the result as an app version, and settle the reservation
//! when the job ends (by the rules of [`crate::settlement`]), with reconciliation after a crash.
//!
//! A [`GenerationService`] owns the job queue it builds (so that every job's end settles its
//! reservation), the quota, the saved apps and the pipelines. A host submits work with
//! [`GenerationService::submit`], runs workers with [`GenerationService::start_workers`] (or
//! registers the handlers on a pool of its own with [`GenerationService::register`]), and
//! mounts the HTTP API with `appforge::axum::router` (feature `axum`).
//!
//! ```
//! use appforge::generation::{GenerationService, Submission};
//! use appforge::apps::MemoryAppStore;
//! use appforge::jobs::MemoryJobStore;
//! use appforge::llm::{FullAppRequest, Pipelines, ScriptedProvider, StopReason};
//! use appforge::quota::{MemoryUsageStore, Quota};
//! use futures::StreamExt;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A model that answers one app in the generation protocol.
//! let answer = "===NAME===\nTodo\n===FILE: src/App.tsx===\nexport default () => null;\n===END===\n";
//! let provider = ScriptedProvider::new().with(ScriptedProvider::text_transcript([answer], &StopReason::EndTurn));
//! let service = GenerationService::builder(
//!     Quota::new(MemoryUsageStore::new()),
//!     MemoryJobStore::new(),
//!     MemoryAppStore::new(),
//!     Pipelines::new(provider),
//! )
//! .build()?;
//! let workers = service.start_workers(2)?;
//!
//! let user = uuid::Uuid::new_v4();
//! let submitted = service
//!     .submit(user, Submission::full_app(FullAppRequest::new("a todo list")))
//!     .await?;
//! let mut events = service.queue().subscribe(user, submitted.job).await?;
//! while events.next().await.is_some() {}
//!
//! let job = service.queue().get(user, submitted.job).await?;
//! assert_eq!(job.result.as_ref().unwrap()["version"], 1);
//! workers.shutdown(Duration::from_secs(5)).await;
//! service.flush_settlements(Duration::from_secs(5)).await;
//! assert_eq!(service.quota().status(user).await?.daily.used, 1);
//! # Ok(()) }
//! ```

#[cfg(feature = "analytics")]
#[cfg_attr(docsrs, doc(cfg(feature = "analytics")))]
pub mod analytics;
mod chat;
mod handler;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod joint;
pub mod limits;
mod purge;
#[cfg(feature = "sentry")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentry")))]
pub mod reports;
mod submit;
#[cfg(feature = "uploads")]
mod uploads;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use appforge_apps::{AnyAppStore, AppStore};
use appforge_core::{Owner, SharedClock};
use appforge_jobs::{AnyJobStore, Job, JobQueue, JobStore, WorkerPool, WorkerPoolBuilder};
use appforge_llm::{Attachment, Pipelines};
use appforge_quota::{AnyUsageStore, Plan, PlanId, Quota, UsageStore};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::reconcile::Reconciler;
use crate::settlement::{reservation_of, settle_job};

pub use chat::{ChatChunk, ChatEnded, ChatMessage, ChatReply};
pub use handler::{camel, camel_case_keys};
pub use purge::PurgeReport;
pub use submit::{Submission, SubmitError, Submitted, member_cap_plan, member_cap_subject};
#[cfg(feature = "uploads")]
#[cfg_attr(docsrs, doc(cfg(feature = "uploads")))]
pub use uploads::{UploadedImages, load_attachments};

/// The job kind of a whole-app generation.
pub const FULL_APP: &str = "full_app";
/// The job kind of a change to an existing app.
pub const MODIFY: &str = "modify";
/// The job kind of a phase plan.
pub const PLAN_PHASES: &str = "plan_phases";

/// The key of a job request's attached upload ids: the job loads their bytes when it runs, so
/// the queue holds ids, not images.
pub const ATTACHMENT_IDS: &str = "attachment_ids";

/// How long a job deferred for the fair share waits by default before it is tried again.
pub const DEFAULT_FAIR_SHARE_DELAY: Duration = Duration::from_secs(2);

/// Why the images a job's request attached cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// The upload was deleted (or never was in the job's space): the job fails for good.
    #[error("attachment {0} was deleted")]
    Gone(Uuid),
    /// The storage could not answer now: the attempt is retried.
    #[error("attachments unavailable: {0}")]
    Unavailable(String),
}

/// Where a job's attached images come from (an upload store, for example). Implemented by the
/// host; without one, a job that names attachments fails with [`AttachmentError::Gone`].
pub trait AttachmentLoader: Send + Sync + 'static {
    /// The images of `ids`, in order, read in the job's space `owner` (never another's).
    fn load<'a>(
        &'a self,
        owner: Owner,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Vec<Attachment>, AttachmentError>>;

    /// The size in pixels (width, height) of each image of `ids`, in order, read in `owner`'s
    /// space: what a request's images cost a model is checked with it before anything is
    /// reserved ([`limits::check_request_tokens`]). By default the images are loaded; a
    /// loader that keeps their sizes apart answers without reading them.
    fn dimensions<'a>(
        &'a self,
        owner: Owner,
        ids: &'a [Uuid],
    ) -> BoxFuture<'a, Result<Vec<(u32, u32)>, AttachmentError>> {
        Box::pin(async move {
            Ok(self
                .load(owner, ids)
                .await?
                .iter()
                .map(|image| (image.width, image.height))
                .collect())
        })
    }
}

/// Wraps each job's run: the host binds an error-reporting scope or a tracing span to it.
pub type AroundJob = Arc<
    dyn Fn(
            &Job,
            BoxFuture<'static, appforge_jobs::Outcome>,
        ) -> BoxFuture<'static, appforge_jobs::Outcome>
        + Send
        + Sync,
>;

type EndHook = Arc<dyn Fn(&Job) + Send + Sync>;

type ChatHook = Arc<dyn Fn(&ChatEnded) + Send + Sync>;

/// The generation flow over a job store `J`, a usage store `U` and an app store `A` (each the
/// enum of the built-in backends by default). Cheap to clone.
pub struct GenerationService<J = AnyJobStore, U = AnyUsageStore, A = AnyAppStore> {
    inner: Arc<Inner<J, U, A>>,
}

struct Inner<J, U, A> {
    quota: Quota<U>,
    queue: JobQueue<J>,
    apps: A,
    pipelines: Pipelines,
    provider: String,
    attachments: Option<Arc<dyn AttachmentLoader>>,
    around: Option<AroundJob>,
    fair_share_delay: Duration,
    settlements: TaskTracker,
    chat_hooks: Arc<[ChatHook]>,
    /// Submissions in one transaction with their jobs, when the quota and the queue share a
    /// PostgreSQL database.
    #[cfg(feature = "postgres")]
    joint: Option<Arc<joint::postgres::Joint<J, U>>>,
    /// The SQLite pool the quota and the queue share, when they are on one file.
    #[cfg(feature = "sqlite")]
    sqlite: Option<sqlx::SqlitePool>,
}

impl<J, U, A> Clone for GenerationService<J, U, A> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<J, U, A> fmt::Debug for GenerationService<J, U, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationService")
            .field("provider", &self.inner.provider)
            .field("attachments", &self.inner.attachments.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`GenerationService`].
pub struct GenerationServiceBuilder<J, U, A> {
    quota: Quota<U>,
    store: J,
    apps: A,
    pipelines: Pipelines,
    provider: String,
    clock: Option<SharedClock>,
    hooks: Vec<EndHook>,
    chat_hooks: Vec<ChatHook>,
    attachments: Option<Arc<dyn AttachmentLoader>>,
    around: Option<AroundJob>,
    fair_share_delay: Duration,
    retry: Option<appforge_jobs::RetryPolicy>,
}

impl<J, U, A> fmt::Debug for GenerationServiceBuilder<J, U, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationServiceBuilder")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl<J, U, A> GenerationServiceBuilder<J, U, A>
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
{
    /// The provider's name, added to every result as `provider` (default `anthropic`).
    #[must_use]
    pub fn provider(mut self, name: impl Into<String>) -> Self {
        self.provider = name.into();
        self
    }

    /// The queue's clock (default: the system clock).
    #[must_use]
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The queue's retry policy (default: the jobs crate's).
    #[must_use]
    pub fn retry_policy(mut self, policy: appforge_jobs::RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Adds a hook called when a job ends in this process (completed, failed, cancelled),
    /// after its settlement is started: analytics, metrics, error reports. Keep it quick.
    #[must_use]
    pub fn on_job_end(mut self, hook: impl Fn(&Job) + Send + Sync + 'static) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// Adds a hook called when a chat message ends ([`GenerationService::chat`]), after its
    /// settlement: analytics, metrics. Keep it quick.
    #[must_use]
    pub fn on_chat_end(mut self, hook: impl Fn(&ChatEnded) + Send + Sync + 'static) -> Self {
        self.chat_hooks.push(Arc::new(hook));
        self
    }

    /// Where jobs load the images their requests attach.
    #[must_use]
    pub fn attachments(mut self, loader: impl AttachmentLoader) -> Self {
        self.attachments = Some(Arc::new(loader));
        self
    }

    /// Wraps each job's run (an error-reporting scope, a span).
    #[must_use]
    pub fn around_job(
        mut self,
        wrap: impl Fn(
            &Job,
            BoxFuture<'static, appforge_jobs::Outcome>,
        ) -> BoxFuture<'static, appforge_jobs::Outcome>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.around = Some(Arc::new(wrap));
        self
    }

    /// How long a job deferred by the fair share waits before it is tried again
    /// (default [`DEFAULT_FAIR_SHARE_DELAY`]).
    #[must_use]
    pub fn fair_share_delay(mut self, delay: Duration) -> Self {
        self.fair_share_delay = delay;
        self
    }

    /// The service, with its job queue.
    ///
    /// # Errors
    ///
    /// The queue's configuration error.
    pub fn build(self) -> appforge_jobs::Result<GenerationService<J, U, A>> {
        let settlements = TaskTracker::new();
        let tasks = settlements.clone();
        let quota = self.quota.clone();
        let hooks = self.hooks;
        let mut queue = JobQueue::builder(self.store).on_terminal(move |job| {
            settle(&quota, &tasks, job);
            for hook in &hooks {
                hook(job);
            }
        });
        if let Some(clock) = self.clock {
            queue = queue.clock(clock);
        }
        if let Some(retry) = self.retry {
            queue = queue.retry_policy(retry);
        }
        let queue = queue.build()?;
        #[cfg(feature = "postgres")]
        let joint = joint::postgres::joint(&self.quota, &queue);
        #[cfg(feature = "sqlite")]
        let sqlite = joint::sqlite::shared(&self.quota, &queue);
        Ok(GenerationService {
            inner: Arc::new(Inner {
                #[cfg(feature = "postgres")]
                joint,
                #[cfg(feature = "sqlite")]
                sqlite,
                quota: self.quota,
                queue,
                apps: self.apps,
                pipelines: self.pipelines,
                provider: self.provider,
                attachments: self.attachments,
                around: self.around,
                fair_share_delay: self.fair_share_delay,
                settlements,
                chat_hooks: self.chat_hooks.into(),
            }),
        })
    }
}

/// Money follows the job: when a job that carries a reservation ends, the reservation is
/// settled by the rules of [`crate::settlement`] on a task the service tracks. Both commit and
/// refund are idempotent, so a repeated hook (or a reconciliation after a crash) never charges
/// twice.
fn settle<U: UsageStore + 'static>(quota: &Quota<U>, tasks: &TaskTracker, job: &Job) {
    if reservation_of(job).is_none() || tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let quota = quota.clone();
    let job = job.clone();
    tasks.spawn(async move {
        if let Err(error) = settle_job(&quota, &job).await {
            tracing::warn!(job = %job.id, %error, "settling the job's quota reservation failed");
        }
    });
}

impl<J, U, A> GenerationService<J, U, A>
where
    J: JobStore,
    U: UsageStore + 'static,
    A: AppStore + Clone + 'static,
{
    /// A builder over the quota, the job store (the service builds the queue on it), the app
    /// store and the pipelines.
    pub fn builder(
        quota: Quota<U>,
        jobs: J,
        apps: A,
        pipelines: Pipelines,
    ) -> GenerationServiceBuilder<J, U, A> {
        GenerationServiceBuilder {
            quota,
            store: jobs,
            apps,
            pipelines,
            provider: "anthropic".to_owned(),
            clock: None,
            hooks: Vec::new(),
            chat_hooks: Vec::new(),
            attachments: None,
            around: None,
            fair_share_delay: DEFAULT_FAIR_SHARE_DELAY,
            retry: None,
        }
    }

    /// The quota.
    #[must_use]
    pub fn quota(&self) -> &Quota<U> {
        &self.inner.quota
    }

    /// The job queue (its terminal transitions settle reservations).
    #[must_use]
    pub fn queue(&self) -> &JobQueue<J> {
        &self.inner.queue
    }

    /// Whether a submission's reservation and job commit in one transaction: the quota and
    /// the queue are on the same PostgreSQL database or the same SQLite file (see
    /// [`submit`](Self::submit)).
    #[must_use]
    pub fn submits_in_one_transaction(&self) -> bool {
        #[allow(unused_mut)] // without the SQL features
        let mut one = false;
        #[cfg(feature = "postgres")]
        {
            one |= self.inner.joint.is_some();
        }
        #[cfg(feature = "sqlite")]
        {
            one |= self.inner.sqlite.is_some();
        }
        one
    }

    #[cfg(feature = "postgres")]
    fn joint(&self) -> Option<&Arc<joint::postgres::Joint<J, U>>> {
        self.inner.joint.as_ref()
    }

    #[cfg(feature = "sqlite")]
    fn shared_sqlite(&self) -> Option<&sqlx::SqlitePool> {
        self.inner.sqlite.as_ref()
    }

    /// The saved apps.
    #[must_use]
    pub fn apps(&self) -> &A {
        &self.inner.apps
    }

    /// The images of `ids` in `owner`'s space, from the attachment loader
    /// ([`AttachmentLoader::load`]), for a request answered at once (a chat message).
    ///
    /// # Errors
    ///
    /// As [`attachment_dimensions`](Self::attachment_dimensions).
    pub async fn load_attachments(
        &self,
        owner: Owner,
        ids: &[Uuid],
    ) -> Result<Vec<Attachment>, AttachmentError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match &self.inner.attachments {
            Some(loader) => loader.load(owner, ids).await,
            None => Err(AttachmentError::Gone(ids[0])),
        }
    }

    /// The size of each image of `ids` in `owner`'s space, from the attachment loader
    /// ([`AttachmentLoader::dimensions`]), for checking a request before it is submitted.
    ///
    /// # Errors
    ///
    /// [`AttachmentError::Gone`] for an id that is not an image of `owner`'s (always, without
    /// a loader); [`AttachmentError::Unavailable`] when the loader cannot answer now.
    pub async fn attachment_dimensions(
        &self,
        owner: Owner,
        ids: &[Uuid],
    ) -> Result<Vec<(u32, u32)>, AttachmentError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match &self.inner.attachments {
            Some(loader) => loader.dimensions(owner, ids).await,
            None => Err(AttachmentError::Gone(ids[0])),
        }
    }

    /// The pipelines, before a plan's output cap.
    #[must_use]
    pub fn pipelines(&self) -> &Pipelines {
        &self.inner.pipelines
    }

    /// The provider's name reported in results.
    #[must_use]
    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    /// The pipelines a request of `plan` runs on: each model call asks for at most the plan's
    /// output tokens (and never more than the model allows).
    #[must_use]
    pub fn pipelines_for(&self, plan: &Plan) -> Pipelines {
        let pipelines = &self.inner.pipelines;
        let cap = plan
            .request_limits
            .output_tokens
            .min(pipelines.max_tokens_in_effect());
        pipelines.clone().max_tokens(cap)
    }

    /// The plan a job was enqueued on (its payload's `plan`), or the catalogue's default.
    #[must_use]
    pub fn plan_of_job(&self, payload: &Value) -> Plan {
        let catalogue = self.inner.quota.catalogue();
        payload
            .get("plan")
            .and_then(Value::as_str)
            .and_then(|id| catalogue.get(&PlanId::new(id)))
            .unwrap_or_else(|| catalogue.default_plan())
            .clone()
    }

    /// Registers the generation handlers (`full_app`, `modify`, `plan_phases`) on `builder`,
    /// with the fair share of the workers: a job whose user already runs as many jobs as their
    /// plan's `max_running_jobs` is given back to the queue unstarted, and the pool claims
    /// other users' jobs meanwhile. Claims are sized to the free slots (no prefetch): a
    /// generation runs for seconds to minutes, so other processes start the rest.
    #[must_use]
    pub fn register(&self, builder: WorkerPoolBuilder<J>) -> WorkerPoolBuilder<J> {
        let full = self.clone();
        let modify = self.clone();
        let plan = self.clone();
        let share = self.clone();
        builder
            .prefetch(0)
            .handler(FULL_APP, move |ctx| full.clone().run(ctx))
            .handler(MODIFY, move |ctx| modify.clone().run(ctx))
            .handler(PLAN_PHASES, move |ctx| plan.clone().run(ctx))
            .admission(move |job| {
                let service = share.clone();
                let job = job.clone();
                async move { service.fair_share(&job).await }
            })
    }

    /// Starts a worker pool of `concurrency` slots running the generation handlers, with a
    /// 60 s lease renewed every 15 s.
    ///
    /// # Errors
    ///
    /// The pool's configuration error.
    pub fn start_workers(&self, concurrency: u32) -> appforge_jobs::Result<WorkerPool<J>> {
        self.register(WorkerPool::builder(self.inner.queue.clone()))
            .concurrency(concurrency)
            .lease(Duration::from_secs(60))
            .heartbeat(Duration::from_secs(15))
            .start()
    }

    /// A reconciler over this service's quota and queue: it settles jobs that ended without
    /// their settlement and releases held reservations whose job is gone.
    #[must_use]
    pub fn reconciler(&self) -> Reconciler<J, U> {
        Reconciler::new(self.inner.quota.clone(), self.inner.queue.clone())
    }

    /// Runs `work` (a model call and its settlement, such as a chat reply) on a task that
    /// outlives the request that started it and that [`flush_settlements`](Self::flush_settlements)
    /// waits for.
    pub fn spawn_settled<F>(&self, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.inner.settlements.spawn(work);
    }

    /// Waits (up to `deadline`) for the settlements of jobs that just ended and the work
    /// spawned by [`spawn_settled`](Self::spawn_settled), so that a process stopping right
    /// after a job's last write still commits or refunds it. New settlements are still
    /// accepted and waited for by a later call.
    pub async fn flush_settlements(&self, deadline: Duration) {
        let tracker = &self.inner.settlements;
        tracker.close();
        if tokio::time::timeout(deadline, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = tracker.len(),
                "quota settlements still running at exit; their reservations are released after the timeout"
            );
        }
        tracker.reopen();
    }
}
