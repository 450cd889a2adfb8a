//! The conformance suite every [`EventStore`] passes: one behavioural test body per rule, run
//! here on memory, SQLite and PostgreSQL, and on any store outside this crate with
//! [`event_store_suite!`](crate::event_store_suite).
//!
//! The macro expands every case into a `#[tokio::test]` (the calling crate needs `tokio` with
//! `macros` and `rt`).
//!
//! ```no_run
//! use appforge_analytics::MemoryEventStore;
//! use appforge_analytics::testing::Backend;
//!
//! async fn backend() -> Option<Backend<MemoryEventStore>> {
//!     Some(Backend::new(MemoryEventStore::new()))
//! }
//!
//! appforge_analytics::event_store_suite!(backend);
//! # fn main() {}
//! ```

mod data;
mod suite;

pub use suite::{
    a_user_with_one_event, empty_ranges_give_empty_metrics, first_seen_is_the_first_event_ever,
    inserting_twice_keeps_one_row, recorder_writes_through_the_store, retention_by_signup_week,
    round_trips_events_in_half_open_ranges, stores_large_batches,
    year_end_metrics_have_known_answers,
};

use std::any::Any;
use std::fmt;

#[cfg(doc)]
use crate::EventStore;

type Guard = Box<dyn Any + Send>;

/// A fresh store under test, and whatever keeps its database alive.
pub struct Backend<S> {
    /// The store: empty, migrated.
    pub store: S,
    guard: Guard,
}

impl<S: fmt::Debug> fmt::Debug for Backend<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<S> Backend<S> {
    /// A fresh, migrated store.
    pub fn new(store: S) -> Self {
        Self {
            store,
            guard: Box::new(()),
        }
    }

    /// Keeps `guard` (a temporary file, a test database) alive as long as the case runs.
    #[must_use]
    pub fn guard(mut self, guard: impl Any + Send) -> Self {
        self.guard = Box::new(guard);
        self
    }

    fn into_parts(self) -> (S, Guard) {
        (self.store, self.guard)
    }
}

/// Runs every case of the suite as a `#[tokio::test]`, each on a fresh backend from
/// `$make`, an `async fn() -> Option<Backend<S>>` (`None` skips the case, as a PostgreSQL
/// backend does without `DATABASE_URL`).
#[macro_export]
macro_rules! event_store_suite {
    ($make:path $(,)?) => {
        $crate::event_store_suite!(@cases $make,
            round_trips_events_in_half_open_ranges,
            inserting_twice_keeps_one_row,
            stores_large_batches,
            first_seen_is_the_first_event_ever,
            empty_ranges_give_empty_metrics,
            year_end_metrics_have_known_answers,
            retention_by_signup_week,
            a_user_with_one_event,
            recorder_writes_through_the_store,
        );
    };
    (@cases $make:path, $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some(backend) = $make().await else {
                    return;
                };
                $crate::testing::$case(backend).await;
            }
        )*
    };
}
