//! The fixtures of each backend: the exported suite's `Fixture` over a fresh store.

pub(crate) use appforge_jobs::testing::{Fixture, job};

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
