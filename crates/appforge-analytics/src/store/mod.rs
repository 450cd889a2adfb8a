//! Where events are kept: the [`EventStore`] trait and its backends.

mod any;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::fmt;
use std::future::Future;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AnalyticsEvent, Result};

pub use any::AnyEventStore;
pub use memory::MemoryEventStore;
#[cfg(feature = "postgres")]
pub use postgres::PgEventStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteEventStore;

/// The name of the table recording this crate's applied migrations.
pub const MIGRATIONS_TABLE: &str = "_appforge_analytics_migrations";

/// Storage for analytics events.
///
/// The crate's stores implement it, and so can a store outside it (every type in its
/// signatures is public); the `testing` feature exports the behavioural suite every store
/// passes (`appforge_analytics::testing`).
///
/// Inserting is idempotent by event id (a retried batch keeps one row per event) and atomic
/// per batch.
pub trait EventStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a batch of events in one transaction; events whose id is already stored are
    /// skipped.
    ///
    /// # Errors
    ///
    /// The store's error when it fails (`Error::Database` for the SQL stores); nothing of
    /// the batch is stored then.
    fn insert_batch(&self, events: &[AnalyticsEvent]) -> impl Future<Output = Result<()>> + Send;

    /// The events with `from <= created_at < to`, oldest first (ties by id).
    ///
    /// # Errors
    ///
    /// The store's error when it fails (`Error::Database` for the SQL stores).
    fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<AnalyticsEvent>>> + Send;

    /// The users whose first event ever lies in `[from, to)`, with that first time, ordered
    /// by user id.
    ///
    /// # Errors
    ///
    /// The store's error when it fails (`Error::Database` for the SQL stores).
    fn first_seen_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<(Uuid, DateTime<Utc>)>>> + Send;
}
