//! The behavioural suite every store runs (`appforge_billing::testing`), on memory, SQLite and
//! PostgreSQL, and a store implemented outside the crate.

use appforge_billing::BillingStore;

appforge_billing::store_suite!(
    memory,
    setup = |guard| ((), appforge_billing::MemoryBillingStore::new())
);

#[cfg(feature = "sqlite")]
appforge_billing::store_suite!(
    sqlite,
    setup = |guard| {
        let file = appforge_testing::TempSqlite::new();
        let store = appforge_billing::SqliteBillingStore::connect(&file.url())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (file, store)
    }
);

#[cfg(feature = "postgres")]
appforge_billing::store_suite!(
    postgres,
    setup = |guard| {
        let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
            return;
        };
        let store = appforge_billing::PgBillingStore::new(db.pool().await);
        store.migrate().await.unwrap();
        (db, store)
    }
);

#[tokio::test]
async fn the_any_store_connects_by_url() {
    let store = appforge_billing::AnyBillingStore::connect("memory:")
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert!(matches!(
        store,
        appforge_billing::AnyBillingStore::Memory(_)
    ));
    let err = appforge_billing::AnyBillingStore::connect("mysql://x")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("mysql"), "{err}");
}
