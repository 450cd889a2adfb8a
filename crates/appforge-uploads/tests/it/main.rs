//! Integration tests of appforge-uploads: one metadata suite run on every backend, storage
//! conformance on every storage, and hostile uploads.

mod hostile;
mod storage;
mod suite;

mod memory {
    use appforge_uploads::{AnyUploadStore, MemoryUploadStore};

    async fn store() -> Option<(AnyUploadStore, super::suite::Guard)> {
        Some((MemoryUploadStore::new().into(), Box::new(())))
    }

    crate::backend_suite!(store);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_testing::TempSqlite;
    use appforge_uploads::{AnyUploadStore, SqliteUploadStore};

    async fn store() -> Option<(AnyUploadStore, super::suite::Guard)> {
        let file = TempSqlite::new();
        let store = SqliteUploadStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        Some((store.into(), Box::new(file)))
    }

    crate::backend_suite!(store);
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_uploads::{AnyUploadStore, PgUploadStore};

    async fn store() -> Option<(AnyUploadStore, super::suite::Guard)> {
        // Skips (saying why) without DATABASE_URL.
        let db = appforge_testing::TestDatabase::create_or_skip().await?;
        let pool = db
            .pool_with(sqlx::postgres::PgPoolOptions::new().max_connections(8))
            .await;
        let store = PgUploadStore::from_pool(pool);
        store.migrate().await.unwrap();
        Some((store.into(), Box::new(db)))
    }

    crate::backend_suite!(store);
}
