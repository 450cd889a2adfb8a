use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::store::{JobStore, Lease};
use crate::{Error, Job, JobQueue, Outcome, Progress, Result};

/// What a handler gets: the job, a cancellation token, and a way to report progress.
pub struct JobContext {
    job: Arc<Job>,
    lease: Lease,
    token: CancellationToken,
    reporter: Arc<dyn Reporter>,
}

impl fmt::Debug for JobContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobContext")
            .field("job", &self.job.id)
            .field("attempt", &self.lease.attempt)
            .finish_non_exhaustive()
    }
}

pub(crate) trait Reporter: Send + Sync {
    fn report(&self, lease: Lease, progress: serde_json::Value) -> BoxFuture<'_, Result<()>>;
}

impl<S: JobStore> Reporter for JobQueue<S> {
    fn report(&self, lease: Lease, progress: serde_json::Value) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.report_progress(&lease, progress).await })
    }
}

impl JobContext {
    pub(crate) fn new(
        job: Arc<Job>,
        lease: Lease,
        token: CancellationToken,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        Self {
            job,
            lease,
            token,
            reporter,
        }
    }

    /// The job being run (its `attempt` is this attempt's number, from 1).
    #[must_use]
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// The job's payload.
    #[must_use]
    pub fn payload(&self) -> &serde_json::Value {
        &self.job.payload
    }

    /// Fires when the job should stop: its owner cancelled it, the lease was lost, or the
    /// pool is shutting down past its deadline. Handlers check it or `select!` on
    /// [`CancellationToken::cancelled`].
    #[must_use]
    pub fn cancellation(&self) -> &CancellationToken {
        &self.token
    }

    /// Whether the job should stop.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Reports progress: stored on the job and published as an event.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseLost`] when this attempt no longer holds the job; store errors.
    pub async fn progress(&self, progress: Progress) -> Result<()> {
        let value = serde_json::to_value(&progress)
            .map_err(|e| Error::InvalidInput(format!("progress does not serialise: {e}")))?;
        self.reporter.report(self.lease, value).await
    }

    /// Reports progress as any serialisable value.
    ///
    /// # Errors
    ///
    /// As [`progress`](Self::progress).
    pub async fn progress_json(&self, progress: &impl Serialize) -> Result<()> {
        let value = serde_json::to_value(progress)
            .map_err(|e| Error::InvalidInput(format!("progress does not serialise: {e}")))?;
        self.reporter.report(self.lease, value).await
    }
}

/// A registered job handler.
pub(crate) type Handler = Arc<dyn Fn(JobContext) -> BoxFuture<'static, Outcome> + Send + Sync>;

pub(crate) fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(JobContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

/// A handler of typed jobs: any `Fn(JobContext, A) -> impl Future<Output = Outcome>` (for
/// [`WorkerPoolBuilder::handle`](crate::WorkerPoolBuilder::handle)). It names the future's
/// type so that the closure's arguments are inferred from `handle::<A>`.
pub trait TypedHandler<A>:
    Fn(JobContext, A) -> <Self as TypedHandler<A>>::Future + Send + Sync + 'static
{
    /// The future the handler returns.
    type Future: Future<Output = Outcome> + Send + 'static;
}

impl<A, F, Fut> TypedHandler<A> for F
where
    F: Fn(JobContext, A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    type Future = Fut;
}

/// Wraps a typed handler: the payload is decoded into `A` first; one that does not decode
/// fails the job permanently (running it again would not help).
pub(crate) fn typed_handler<A: crate::JobArgs>(f: impl TypedHandler<A>) -> Handler {
    Arc::new(
        move |ctx: JobContext| match crate::args::decode::<A>(ctx.payload()) {
            Ok(args) => Box::pin(f(ctx, args)),
            Err(error) => {
                tracing::warn!(job = %ctx.job().id, %error, "job payload does not decode");
                Box::pin(std::future::ready(Outcome::permanent(error)))
            }
        },
    )
}
