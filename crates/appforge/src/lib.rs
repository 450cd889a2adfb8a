//! The backend of an AI app builder as one dependency: the appforge crates behind features,
//! and the parts of the generation flow that every host needs.
//!
//! - [`settlement`]: who pays for a model call. A generation job carries its quota
//!   reservation; when the job ends, [`settlement::settle_job`] commits or refunds it by one
//!   table of rules (completed, stopped, failed by the request, failed by us or the provider).
//! - [`generation`]: the flow as a service. A [`generation::GenerationService`] reserves,
//!   enqueues, runs the pipelines with progress, saves the app version and settles.
//! - [`reconcile`]: what a stopped process left open. A [`reconcile::Reconciler`] settles the
//!   jobs that ended without their settlement and releases held reservations whose job is gone.
//!
//! ```
//! use appforge::jobs::{JobQueue, MemoryJobStore, NewJob, Outcome, WorkerPool};
//! use appforge::quota::{Admission, MemoryUsageStore, Quota, Resource};
//! use appforge::reconcile::Reconciler;
//! use appforge::settlement::RESERVATION_KEY;
//! use futures::StreamExt;
//! use serde_json::json;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let quota = Quota::new(MemoryUsageStore::new());
//! let queue = JobQueue::new(MemoryJobStore::new());
//! let user = uuid::Uuid::new_v4();
//!
//! // Reserve one generation, then enqueue the job that carries the reservation.
//! let Admission::Granted(reservation) = quota.reserve_for(user, Resource::Generation, 1).await? else {
//!     unreachable!("a new Free user has generations left");
//! };
//! let job = NewJob::new("full_app", user, json!({ RESERVATION_KEY: reservation.id }));
//! let job = queue.enqueue(job).await?;
//!
//! // A worker completes it; this queue has no settlement hook, as if its process had stopped
//! // right after the job's last write. The reconciler charges the generation and its tokens.
//! let workers = WorkerPool::builder(queue.clone())
//!     .handler("full_app", |_ctx| async { Outcome::success(json!({})).with_tokens(100, 900) })
//!     .start()?;
//! let mut events = queue.subscribe(user, job.id).await?;
//! while events.next().await.is_some() {}
//! workers.shutdown(Duration::from_secs(5)).await;
//!
//! let report = Reconciler::new(quota.clone(), queue.clone()).at_start().await;
//! assert_eq!(report.committed, 1);
//! let status = quota.status(user).await?;
//! assert_eq!((status.daily.used, status.tokens.used), (1, 1_000));
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `generation` | yes | [`generation`] (the service), [`settlement`] and [`reconcile`]; brings `jobs`, `quota`, `apps`, `files` and the llm pipelines |
//! | `axum` | no | `axum`: the generation HTTP API as a mountable router, with pluggable authentication |
//! | `sqlite` | yes | the SQLite stores of the crates turned on |
//! | `postgres` | no | the PostgreSQL stores of the crates turned on |
//! | `jobs` | with `generation` | [`jobs`]: `appforge-jobs` |
//! | `quota` | with `generation` | [`quota`]: `appforge-quota` |
//! | `llm` | no | `llm`: `appforge-llm` with the Anthropic client |
//! | `files` | no | `files`: `appforge-files` |
//! | `apps` | no | `apps`: `appforge-apps` |
//! | `billing` | no | `billing`: `appforge-billing` |
//! | `analytics` | no | `analytics`: `appforge-analytics`; with `generation`, `generation::analytics` (a job's end as an event) |
//! | `orgs` | no | `orgs`: `appforge-orgs`; with `axum`, `axum::OrgSpaces` (the router in an org's space, by the member's role) |
//! | `sentry` | no | `generation::reports`: generation jobs' error reports to Sentry, scrubbed |
//! | `uploads` | no | `uploads`: `appforge-uploads`; with `generation`, `generation::UploadedImages` (attachments from uploads) |
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use appforge_core as core;

#[cfg(feature = "analytics")]
pub use appforge_analytics as analytics;
#[cfg(feature = "apps")]
pub use appforge_apps as apps;
#[cfg(feature = "billing")]
pub use appforge_billing as billing;
#[cfg(feature = "files")]
pub use appforge_files as files;
#[cfg(feature = "jobs")]
pub use appforge_jobs as jobs;
#[cfg(any(feature = "llm", feature = "generation"))]
pub use appforge_llm as llm;
#[cfg(feature = "orgs")]
pub use appforge_orgs as orgs;
#[cfg(feature = "quota")]
pub use appforge_quota as quota;
#[cfg(feature = "uploads")]
pub use appforge_uploads as uploads;

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "generation")]
pub mod generation;
#[cfg(feature = "generation")]
pub mod reconcile;
#[cfg(feature = "generation")]
pub mod settlement;
