//! Integration tests of appforge-orgs: the conformance suite on every backend, and tampering
//! with each backend's stored audit log.

mod cache;
mod tamper;

fn clock() -> appforge_core::ManualClock {
    appforge_core::ManualClock::at(appforge_testing::fixed_now())
}

mod memory {
    use appforge_orgs::MemoryOrgStore;
    use appforge_orgs::testing::Backend;

    async fn backend() -> Option<Backend<MemoryOrgStore>> {
        let clock = super::clock();
        Some(Backend::new(
            MemoryOrgStore::new().with_clock(clock.shared()),
            clock,
        ))
    }

    appforge_orgs::org_store_suite!(backend);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_orgs::SqliteOrgStore;
    use appforge_orgs::testing::Backend;
    use appforge_testing::TempSqlite;

    async fn backend() -> Option<Backend<SqliteOrgStore>> {
        let file = TempSqlite::new();
        let clock = super::clock();
        let store = SqliteOrgStore::connect(&file.url())
            .await
            .unwrap()
            .with_clock(clock.shared());
        store.migrate().await.unwrap();
        Some(Backend::new(store, clock).guard(file))
    }

    appforge_orgs::org_store_suite!(backend);
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_orgs::PgOrgStore;
    use appforge_orgs::testing::Backend;
    use appforge_testing::TestDatabase;

    async fn backend() -> Option<Backend<PgOrgStore>> {
        let db = TestDatabase::create_or_skip().await?;
        let pool = db
            .pool_with(sqlx::postgres::PgPoolOptions::new().max_connections(8))
            .await;
        let clock = super::clock();
        let store = PgOrgStore::from_pool(pool).with_clock(clock.shared());
        store.migrate().await.unwrap();
        Some(Backend::new(store, clock).guard(db))
    }

    appforge_orgs::org_store_suite!(backend);
}

mod any {
    use appforge_orgs::{AnyOrgStore, Error};

    #[tokio::test]
    async fn stores_are_chosen_by_url() {
        let store = AnyOrgStore::connect("memory:").await.unwrap();
        assert!(matches!(store, AnyOrgStore::Memory(_)));
        let err = AnyOrgStore::connect("mysql://localhost/db")
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
        let store = AnyOrgStore::connect(&file.url()).await.unwrap();
        assert!(matches!(store, AnyOrgStore::Sqlite(_)));
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
    }

    /// The service works over the run-time choice as over a concrete store.
    #[tokio::test]
    async fn the_service_runs_over_any_store() {
        use appforge_orgs::{Caller, NewOrg, Orgs};
        let orgs: Orgs = Orgs::new(AnyOrgStore::connect("memory:").await.unwrap());
        let ada = Caller::user(uuid::Uuid::new_v4());
        let org = orgs
            .create_org(&ada, NewOrg::new("Acme", "acme"))
            .await
            .unwrap();
        assert_eq!(orgs.get_org(&ada, org.id).await.unwrap().slug, "acme");
    }
}
