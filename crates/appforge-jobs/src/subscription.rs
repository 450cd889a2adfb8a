use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::stream::BoxStream;
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::store::JobStore;
use crate::{Job, JobEvent, JobEventKind, JobId, JobQueue, JobStatus};

/// The live events of one job, from [`JobQueue::subscribe`]: a
/// [`Snapshot`](crate::JobEventKind::Snapshot) of its current state first, then each event as
/// it happens; the stream ends after the terminal event.
///
/// A subscriber that falls behind (or misses events from another process) is resynchronised
/// from the store with a fresh snapshot; it never slows the workers down.
pub struct JobSubscription {
    inner: BoxStream<'static, JobEvent>,
}

impl fmt::Debug for JobSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobSubscription").finish_non_exhaustive()
    }
}

/// What a subscriber has seen of the job, to tell a changed job from an unchanged one.
type Seen = (JobStatus, u32, bool, Option<Value>);

fn seen(job: &Job) -> Seen {
    (
        job.status,
        job.attempt,
        job.cancel_requested,
        job.progress.clone(),
    )
}

struct State<S: JobStore> {
    _watch: Unwatch<S>,
    queue: JobQueue<S>,
    id: JobId,
    rx: broadcast::Receiver<JobEvent>,
    first: Option<Job>,
    seen: Seen,
    done: bool,
    poll: Duration,
}

impl JobSubscription {
    pub(crate) fn new<S: JobStore>(
        queue: JobQueue<S>,
        job: Job,
        rx: broadcast::Receiver<JobEvent>,
        poll: Duration,
    ) -> Self {
        let state = State {
            _watch: Unwatch {
                queue: queue.clone(),
                id: job.id,
            },
            queue,
            id: job.id,
            rx,
            seen: seen(&job),
            first: Some(job),
            done: false,
            poll,
        };
        Self {
            inner: Box::pin(futures::stream::unfold(state, next)),
        }
    }
}

async fn next<S: JobStore>(mut st: State<S>) -> Option<(JobEvent, State<S>)> {
    if st.done {
        return None;
    }
    if let Some(job) = st.first.take() {
        st.done = job.status.is_terminal();
        let event = JobEvent::snapshot(&job, st.queue.now());
        return Some((event, st));
    }
    loop {
        match tokio::time::timeout(st.poll, st.rx.recv()).await {
            Ok(Ok(event)) if event.job_id == st.id => {
                st.done = event.is_terminal();
                st.seen.0 = event.status;
                st.seen.1 = event.attempt;
                match &event.kind {
                    JobEventKind::Progress { progress } => st.seen.3 = Some(progress.clone()),
                    JobEventKind::CancelRequested => st.seen.2 = true,
                    _ => {}
                }
                return Some((event, st));
            }
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Closed)) => return None,
            // Lagged, or idle for a poll interval: re-read the job and report it if it changed.
            Ok(Err(RecvError::Lagged(_))) | Err(_) => match st.queue.get_any(st.id).await {
                Ok(job) => {
                    let now_seen = seen(&job);
                    if now_seen != st.seen {
                        st.seen = now_seen;
                        st.done = job.status.is_terminal();
                        let event = JobEvent::snapshot(&job, st.queue.now());
                        return Some((event, st));
                    }
                }
                Err(e) if e.is_not_found() => return None,
                Err(e) => tracing::debug!(error = %e, "subscription resync failed; will retry"),
            },
        }
    }
}

/// Stops watching the job when the subscription ends.
struct Unwatch<S: JobStore> {
    queue: JobQueue<S>,
    id: JobId,
}

impl<S: JobStore> Drop for Unwatch<S> {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (queue, id) = (self.queue.clone(), self.id);
            runtime.spawn(async move {
                if let Err(e) = queue.store().unwatch(id).await {
                    tracing::debug!(error = %e, "cannot unwatch a job; the watch expires");
                }
            });
        }
    }
}

impl Stream for JobSubscription {
    type Item = JobEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}
