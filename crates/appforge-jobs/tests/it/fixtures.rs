use std::any::Any;
use std::time::Duration;

use appforge_jobs::{JobQueue, JobStore, NewJob, RetryPolicy};
use appforge_testing::{ManualClock, fixed_now};
use serde_json::json;
use uuid::Uuid;

/// A queue on a fresh store with a manual clock; `guard` keeps the database alive.
pub(crate) struct Fixture<S> {
    pub(crate) queue: JobQueue<S>,
    pub(crate) store: S,
    pub(crate) clock: ManualClock,
    _guard: Box<dyn Any + Send>,
}

impl<S: JobStore> Fixture<S> {
    fn new(store: S, guard: Box<dyn Any + Send>) -> Self {
        let clock = ManualClock::at(fixed_now());
        let queue = JobQueue::builder(store.clone())
            .clock(clock.shared())
            .retry_policy(
                RetryPolicy::default()
                    .max_attempts(3)
                    .backoff_range(Duration::from_secs(5), Duration::from_secs(300)),
            )
            .subscription_poll(Duration::from_millis(200))
            .build()
            .unwrap();
        Self {
            queue,
            store,
            clock,
            _guard: guard,
        }
    }

    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

pub(crate) fn job(kind: &str, user: Uuid) -> NewJob {
    NewJob::new(kind, user, json!({ "prompt": "a habit tracker" }))
}

pub(crate) async fn memory() -> Option<Fixture<appforge_jobs::MemoryJobStore>> {
    Some(Fixture::new(
        appforge_jobs::MemoryJobStore::new(),
        Box::new(()),
    ))
}

#[cfg(feature = "sqlite")]
pub(crate) async fn sqlite() -> Option<Fixture<appforge_jobs::SqliteJobStore>> {
    let file = appforge_testing::TempSqlite::new();
    let store = appforge_jobs::SqliteJobStore::connect(&file.url())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Some(Fixture::new(store, Box::new(file)))
}

#[cfg(feature = "postgres")]
/// `None` without `DATABASE_URL` (the reason is printed).
pub(crate) async fn postgres() -> Option<Fixture<appforge_jobs::PgJobStore>> {
    let db = appforge_testing::TestDatabase::create_or_skip().await?;
    let store = appforge_jobs::PgJobStore::from_pool(db.pool().await);
    store.migrate().await.unwrap();
    Some(Fixture::new(store, Box::new(db)))
}
