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

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_quota::{AnyUsageStore, PgUsageStore};
    use appforge_testing::TestDatabase;

    async fn store() -> (AnyUsageStore, super::suite::Guard) {
        let db = TestDatabase::create().await;
        let pool = db
            .pool_with(sqlx::postgres::PgPoolOptions::new().max_connections(8))
            .await;
        let store = PgUsageStore::from_pool(pool);
        store.migrate().await.unwrap();
        (store.into(), Box::new(db))
    }

    crate::backend_suite!(store, #[cfg_attr(not(appforge_pg), ignore = "needs DATABASE_URL (PostgreSQL)")]);
}
