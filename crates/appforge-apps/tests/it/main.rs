//! Integration tests of appforge-apps: one behavioural suite, run on every backend.

mod suite;

mod memory {
    use appforge_apps::{AnyAppStore, MemoryAppStore};

    async fn store() -> (AnyAppStore, super::suite::Guard) {
        (MemoryAppStore::new().into(), Box::new(()))
    }

    crate::backend_suite!(store);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_apps::{AnyAppStore, SqliteAppStore};
    use appforge_testing::TempSqlite;

    async fn store() -> (AnyAppStore, super::suite::Guard) {
        let file = TempSqlite::new();
        let store = SqliteAppStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        (store.into(), Box::new(file))
    }

    crate::backend_suite!(store);
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_apps::{AnyAppStore, PgAppStore};
    use appforge_testing::TestDatabase;

    async fn store() -> (AnyAppStore, super::suite::Guard) {
        let db = TestDatabase::create().await;
        let pool = db
            .pool_with(sqlx::postgres::PgPoolOptions::new().max_connections(8))
            .await;
        let store = PgAppStore::from_pool(pool);
        store.migrate().await.unwrap();
        (store.into(), Box::new(db))
    }

    crate::backend_suite!(store, #[cfg_attr(not(appforge_pg), ignore = "needs DATABASE_URL (PostgreSQL)")]);
}

mod any {
    use appforge_apps::{AnyAppStore, Error};

    #[tokio::test]
    async fn stores_are_chosen_by_url() {
        let store = AnyAppStore::connect("memory:").await.unwrap();
        assert!(matches!(store, AnyAppStore::Memory(_)));
        let err = AnyAppStore::connect("mysql://localhost/db")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("\"mysql\"")),
            "{err}"
        );
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn a_sqlite_url_opens_and_migrates_twice() {
        let file = appforge_testing::TempSqlite::new();
        let store = AnyAppStore::connect(&file.url()).await.unwrap();
        assert!(matches!(store, AnyAppStore::Sqlite(_)));
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
    }
}
