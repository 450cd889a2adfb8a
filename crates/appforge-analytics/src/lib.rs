//! Usage analytics for appforge hosts: record events without blocking the request path,
//! store them in memory, SQLite or PostgreSQL, and compute the key metrics (active users,
//! generations, failure rate, generation time, tokens and cost, revenue, retention).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use appforge_analytics::{AnalyticsEvent, EventType, MemoryEventStore, Metrics, Recorder};
//! use uuid::Uuid;
//!
//! let store = MemoryEventStore::new();
//! let recorder = Recorder::builder(store.clone()).spawn()?;
//!
//! let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
//! let at = |s: &str| s.parse().unwrap();
//! recorder.record(AnalyticsEvent::new(ada, EventType::SignInSeen, at("2026-03-01T09:00:00Z")));
//! recorder.record(AnalyticsEvent::new(ada, EventType::UpgradeClicked, at("2026-03-01T09:05:00Z")));
//! recorder.record(AnalyticsEvent::new(bob, EventType::SignInSeen, at("2026-03-02T23:59:59Z")));
//! recorder.shutdown().await; // writes what is buffered
//! assert_eq!(recorder.stats().written, 3);
//!
//! let day = |s: &str| s.parse().unwrap();
//! let report = Metrics::new(store).report(day("2026-03-01"), day("2026-03-03")).await?;
//! let dau: Vec<u64> = report.active.days.iter().map(|d| d.dau).collect();
//! assert_eq!(dau, [1, 1]);
//! assert_eq!(report.active.days[1].wau, 2);
//! # Ok::<(), appforge_analytics::Error>(())
//! # }).unwrap();
//! ```
//!
//! - [`Recorder`]: `record(event)` is synchronous and never waits; a background task writes
//!   batches (by size or interval), retries a failing batch, and counts what it drops.
//! - [`EventStore`]: [`MemoryEventStore`], [`SqliteEventStore`], `PgEventStore`, and
//!   [`AnyEventStore`] chosen at run time from a URL or an existing pool; `migrate()` keeps its
//!   bookkeeping in `_appforge_analytics_migrations`.
//! - [`Metrics`]: a [`MetricsReport`] over the UTC days `[from, to)`, with costs from a
//!   [`PriceTable`].
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `sqlite` | yes | the embedded SQLite store |
//! | `postgres` | no | the PostgreSQL store |
//! | `sentry` | no | `ReportingConfig`: error reports to Sentry from `SENTRY_DSN`, secrets scrubbed |
//! | `testing` | no | `appforge_analytics::testing`: the conformance suite every [`EventStore`] passes, for a store outside this crate |
//!
//! Without `sqlite` and `postgres` the crate builds the memory store, the recorder and the
//! metrics alone, without sqlx.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
mod event;
mod metrics;
mod pricing;
mod recorder;
#[cfg(feature = "sentry")]
mod reporting;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use error::{Error, Result};
pub use event::{AnalyticsEvent, EventType, GenerationFacts, RevenueFacts};
pub use metrics::{
    ActiveUsers, Cohort, DailyActive, DailyGenerations, DailyRevenue, DailyUsage, DurationStats,
    ErrorCount, Failures, GenerationCounts, Generations, MAX_RANGE_DAYS, Metrics, MetricsReport,
    RetentionPoint, Revenue, Usage, UserUsage,
};
pub use pricing::{ModelPrice, OFFLINE_DEMO_MODEL, PriceTable, Rates, TokenCounts};
pub use recorder::{Recorder, RecorderBuilder, RecorderStats};
#[cfg(feature = "sentry")]
#[cfg_attr(docsrs, doc(cfg(feature = "sentry")))]
pub use reporting::{
    ReportingConfig, ReportingGuard, scrub_event, scrub_text, tag_job_id, tag_request_id,
    tag_user_id, tracing_layers,
};
#[cfg(feature = "postgres")]
pub use store::PgEventStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteEventStore;
pub use store::{AnyEventStore, EventStore, MIGRATIONS_TABLE, MemoryEventStore};
