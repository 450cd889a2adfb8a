//! Durable generation jobs: a priority queue with leases, retries, workers and live events.
//!
//! A [`JobQueue`] stores jobs in a [`JobStore`] (memory, SQLite or PostgreSQL); a
//! [`WorkerPool`] claims them (highest [`Priority`] first, FIFO within one), runs the handler
//! registered for their kind under a lease renewed by heartbeat, and writes the [`Outcome`]:
//! completed, retried with backoff, or failed. Every transition and progress report is a
//! [`JobEvent`]; [`JobQueue::subscribe`] streams one job's events, current state first.
//!
//! A job is in its submitter's personal space or, with [`NewJob::in_org`], in an org's. The
//! calls that read or change a job for its owner ([`JobQueue::get`], `list`, `cancel`,
//! `subscribe`, `redact_finished`) take the space as `impl Into<`[`Owner`]`>`: a user id
//! is the user's personal space, [`Owner::Org`] an org's, whoever of its members submitted
//! the jobs. The stores check the space in their queries, and a job outside it is
//! [`Error::NotFound`] as a missing one is; who may act for an org is the host's decision.
//!
//! A job's arguments are a type that names its kind ([`JobArgs`]); a worker is registered for
//! that type with [`WorkerPoolBuilder::handle`] and gets the payload decoded. String kinds
//! and raw JSON ([`NewJob::new`], [`WorkerPoolBuilder::handler`]) remain for dynamic hosts
//! and run alongside.
//!
//! ```
//! use appforge_jobs::{JobArgs, JobEventKind, JobQueue, JobStatus, MemoryJobStore, NewJob, Outcome, Owner, Priority, Progress, WorkerPool};
//! use futures::StreamExt;
//! use serde::{Deserialize, Serialize};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! #[derive(Serialize, Deserialize)]
//! struct FullApp {
//!     prompt: String,
//! }
//!
//! impl JobArgs for FullApp {
//!     const KIND: &'static str = "full_app";
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> appforge_jobs::Result<()> {
//! let queue = JobQueue::new(MemoryJobStore::new());
//! let workers = WorkerPool::builder(queue.clone())
//!     .concurrency(4)
//!     .handle::<FullApp>(|ctx, args| async move {
//!         ctx.progress(Progress::FileStarted { path: "src/App.tsx".into() }).await.ok();
//!         Outcome::success(json!({ "name": args.prompt })).with_tokens(120, 900)
//!     })
//!     .handler("rename", |ctx| async move {
//!         Outcome::success(json!({ "name": ctx.payload()["name"] })) // raw JSON
//!     })
//!     .start()?;
//!
//! let user = uuid::Uuid::new_v4();
//! let job = queue
//!     .enqueue(NewJob::from_args(user, &FullApp { prompt: "habit tracker".into() })?.priority(Priority::PRO))
//!     .await?; // or queue.enqueue_args(user, &args) at the defaults
//! let mut events = queue.subscribe(user, job.id).await?;
//! while let Some(event) = events.next().await {
//!     if let JobEventKind::Completed { output_tokens, .. } = event.kind {
//!         assert_eq!(output_tokens, Some(900));
//!     }
//! }
//! let done = queue.get(user, job.id).await?;
//! assert_eq!(done.status, JobStatus::Completed);
//! assert_eq!(done.result, Some(json!({ "name": "habit tracker" })));
//! queue.enqueue(NewJob::new("rename", user, json!({ "name": "Habits" }))).await?;
//!
//! // An org's job: the org reads it, whoever submitted it; the submitter's personal space does not.
//! let org = uuid::Uuid::new_v4();
//! let team = queue.enqueue(NewJob::new("rename", user, json!({ "name": "Team" })).in_org(org)).await?;
//! assert_eq!(queue.get(Owner::Org(org), team.id).await?.user_id, user);
//! assert!(queue.get(user, team.id).await.unwrap_err().is_not_found());
//! workers.shutdown(Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | [`SqliteJobStore`], the embedded store (`sqlx` with the bundled SQLite) |
//! | `postgres` | no | [`PgJobStore`]: `SKIP LOCKED` claims, `LISTEN/NOTIFY` wake-ups and events |
//! | `testing` | no | `testing`: the behavioural suite of [`JobStore`], for a store of your own |
//!
//! With `default-features = false` the crate builds [`MemoryJobStore`] only, without `sqlx`
//! or a TLS stack: for tests, prototypes and hosts that bring their own [`JobStore`].
//!
//! # Guarantees
//!
//! - Every write about a running job is guarded by its [`Lease`] (worker and attempt): a
//!   worker whose lease expired and was rescued cannot complete or fail the job any more.
//! - A job runs again only after a retryable failure or when its lease expired (its worker
//!   died or stalled); a graceful shutdown gives unfinished jobs back without spending an
//!   attempt.
//! - A pool claims ahead of its free slots ([`DEFAULT_PREFETCH`] jobs, waiting locally under a
//!   renewed lease): a graceful shutdown gives them back unspent; when the worker dies they
//!   come back after their lease like running jobs, and the rescue counts the attempt their
//!   claim took (set [`WorkerPoolBuilder::prefetch`] to 0 for jobs with a single attempt).
//! - [`JobQueueBuilder::on_terminal`] is called exactly once per terminal transition, by the
//!   process that wrote it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod alerts;
mod args;
mod error;
mod event;
mod id;
mod job;
mod outcome;
mod priority;
mod queue;
mod retry;
mod stats;
mod status;
mod store;
mod subscription;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod time;
mod worker;

pub use alerts::{Alert, AlertMonitor, AlertPolicy};
/// Whose space a job is in, and the space a scoped call reads (re-exported from
/// `appforge-core`).
pub use appforge_core::Owner;
pub use args::JobArgs;
pub use error::{Error, Result};
pub use event::{JobEvent, JobEventKind};
pub use id::{JobId, WorkerId};
pub use job::{Cursor, DEFAULT_MAX_ATTEMPTS, Enqueued, Job, JobFilter, NewJob, Page, PageRequest};
pub use outcome::{Outcome, Progress, TokenUsage};
pub use priority::Priority;
pub use queue::{JobQueue, JobQueueBuilder, TerminalHook};
pub use retry::RetryPolicy;
pub use stats::{DepthCount, QueueStats};
pub use status::{JobStatus, Transition};
pub use store::any::AnyJobStore;
pub use store::memory::MemoryJobStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::postgres::PgJobStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sqlite::SqliteJobStore;
pub use store::{
    ClaimRequest, Finish, FinishRequest, JobStore, Lease, LeaseState, Notification, Notifications,
    Retention, WorkerInfo,
};
pub use subscription::JobSubscription;
pub use worker::{
    Admit, DEFAULT_PREFETCH, JobContext, ShutdownReport, TypedHandler, WorkerPool,
    WorkerPoolBuilder,
};
