//! The store conformance suite on every backend, and what the SQL stores keep on disk.

fn clock() -> appforge_core::ManualClock {
    appforge_core::ManualClock::at(appforge_testing::fixed_now())
}

mod memory {
    use appforge_sso::MemorySsoStore;
    use appforge_sso::testing::Backend;

    async fn backend() -> Option<Backend<MemorySsoStore>> {
        Some(Backend::new(MemorySsoStore::new(), super::clock()))
    }

    appforge_sso::sso_store_suite!(backend);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_sso::testing::Backend;
    use appforge_sso::{NewSsoConfig, SecretsKey, SqliteSsoStore, Sso};
    use appforge_testing::TempSqlite;

    async fn backend() -> Option<Backend<SqliteSsoStore>> {
        let file = TempSqlite::new();
        let store = SqliteSsoStore::connect(&file.url()).await.unwrap();
        store.migrate().await.unwrap();
        Some(Backend::new(store, super::clock()).guard(file))
    }

    appforge_sso::sso_store_suite!(backend);

    #[tokio::test]
    async fn the_stored_column_holds_no_plaintext_secret() {
        let backend = backend().await.unwrap();
        let store = backend.store.clone();
        let key = SecretsKey::generate();
        let sso = Sso::new(store.clone(), store.clone(), key);
        let org = uuid::Uuid::new_v4();
        sso.configure(
            org,
            NewSsoConfig::new("https://login.acme.com", "appforge", "plain-client-secret"),
        )
        .await
        .unwrap();
        let raw: String =
            sqlx::query_scalar("SELECT client_secret_sealed FROM sso_configs WHERE org_id = ?")
                .bind(org)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(raw.starts_with("v1."), "{raw}");
        assert!(!raw.contains("plain-client-secret"));
        // Migrating again is a no-op.
        store.migrate().await.unwrap();
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_sso::testing::Backend;
    use appforge_sso::{NewSsoConfig, PgSsoStore, SecretsKey, Sso};
    use appforge_testing::TestDatabase;

    async fn backend() -> Option<Backend<PgSsoStore>> {
        let db = TestDatabase::create_or_skip().await?;
        let store = PgSsoStore::from_pool(db.pool().await);
        store.migrate().await.unwrap();
        Some(Backend::new(store, super::clock()).guard(db))
    }

    appforge_sso::sso_store_suite!(backend);

    #[tokio::test]
    async fn the_stored_column_holds_no_plaintext_secret() {
        let Some(backend) = backend().await else {
            return;
        };
        let store = backend.store.clone();
        let sso = Sso::new(store.clone(), store.clone(), SecretsKey::generate());
        let org = uuid::Uuid::new_v4();
        sso.configure(
            org,
            NewSsoConfig::new("https://login.acme.com", "appforge", "plain-client-secret"),
        )
        .await
        .unwrap();
        let raw: String =
            sqlx::query_scalar("SELECT client_secret_sealed FROM sso_configs WHERE org_id = $1")
                .bind(org)
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert!(raw.starts_with("v1."), "{raw}");
        assert!(!raw.contains("plain-client-secret"));
    }
}
