//! Integration tests of appforge-quota: one behavioural suite, run on every backend.

mod suite;

mod memory {
    use appforge_quota::{AnyUsageStore, MemoryUsageStore};

    async fn store() -> (AnyUsageStore, super::suite::Guard) {
        (MemoryUsageStore::new().into(), Box::new(()))
    }

    crate::backend_suite!(store);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_quota::{AnyUsageStore, SqliteUsageStore};
    use appforge_testing::TempSqlite;

    async fn store() -> (AnyUsageStore, super::suite::Guard) {
        let file = TempSqlite::new();
        let store = SqliteUsageStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        (store.into(), Box::new(file))
    }

    crate::backend_suite!(store);
}
