//! Integration tests of appforge-apps: the exported behavioural suite
//! (`appforge_apps::testing`), run on every backend and on a store from outside the crate
//! (`library.rs`).

mod library;

mod memory {
    use appforge_apps::MemoryAppStore;
    use appforge_apps::testing::{Backend, RETENTION, clock};

    async fn backend() -> Option<Backend<MemoryAppStore>> {
        let clock = clock();
        let store = MemoryAppStore::new()
            .with_clock(clock.shared())
            .with_retention(RETENTION);
        Some(Backend::new(store, clock))
    }

    appforge_apps::app_store_suite!(backend);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_apps::SqliteAppStore;
    use appforge_apps::testing::{Backend, RETENTION, clock};
    use appforge_testing::TempSqlite;

    async fn backend() -> Option<Backend<SqliteAppStore>> {
        let file = TempSqlite::new();
        let clock = clock();
        let store = SqliteAppStore::connect(&file.url())
            .await
            .unwrap()
            .with_clock(clock.shared())
            .with_retention(RETENTION);
        store.migrate().await.unwrap();
        Some(Backend::new(store, clock).guard(file))
    }

    appforge_apps::app_store_suite!(backend);
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_apps::PgAppStore;
    use appforge_apps::testing::{Backend, RETENTION, clock};
    use appforge_testing::TestDatabase;

    /// `None` without `DATABASE_URL` (the reason is printed).
    async fn backend() -> Option<Backend<PgAppStore>> {
        let db = TestDatabase::create_or_skip().await?;
        let pool = db
            .pool_with(sqlx::postgres::PgPoolOptions::new().max_connections(8))
            .await;
        let clock = clock();
        let store = PgAppStore::from_pool(pool)
            .with_clock(clock.shared())
            .with_retention(RETENTION);
        store.migrate().await.unwrap();
        Some(Backend::new(store, clock).guard(db))
    }

    appforge_apps::app_store_suite!(backend);

    /// Modifications racing through four pools (as four processes would): those touching
    /// distinct files all land with distinct numbers; of those replacing the same text
    /// exactly one lands.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn several_pools_never_overwrite() {
        use appforge_apps::{AppStore, NewApp, NewVersion, Owner};
        use appforge_files::{AppFile, ChangeSet, Edit, FileChange};

        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let mut stores = Vec::new();
        for _ in 0..4 {
            let pool = db
                .pool_with(sqlx::postgres::PgPoolOptions::new().max_connections(4))
                .await;
            let store = PgAppStore::from_pool(pool);
            store.migrate().await.unwrap();
            stores.push(store);
        }
        let user = Owner::User(uuid::Uuid::new_v4());
        let files = vec![AppFile::new("src/App.tsx", "<main />\n")];
        let app = stores[0]
            .create_app(user, NewApp::new("Race", NewVersion::files(files)))
            .await
            .unwrap()
            .app
            .id;
        let change = |path: String, edit: Option<String>| {
            let change = match edit {
                Some(with) => FileChange::Update {
                    path,
                    edits: vec![Edit::Replace {
                        find: "<main />".into(),
                        with,
                    }],
                },
                None => FileChange::Create {
                    path,
                    content: "x".into(),
                },
            };
            NewVersion::change_set(ChangeSet {
                summary: None,
                changes: vec![change],
            })
        };
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = stores[i % 4].clone();
                let version = change(format!("src/f{i}.ts"), None);
                tokio::spawn(async move { store.add_version(user, app, 1, version).await })
            })
            .collect();
        let mut numbers = Vec::new();
        for task in tasks {
            numbers.push(task.await.unwrap().unwrap().version.info.number);
        }
        numbers.sort_unstable();
        assert_eq!(numbers, (2..=17).collect::<Vec<u32>>());
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = stores[i % 4].clone();
                let version = change("src/App.tsx".into(), Some(format!("<main>{i}</main>")));
                tokio::spawn(async move { store.add_version(user, app, 17, version).await })
            })
            .collect();
        let mut landed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => landed += 1,
                Err(e) => assert_eq!(e.conflict_path(), Some("src/App.tsx"), "{e}"),
            }
        }
        assert_eq!(landed, 1);
        let current = stores[3].get_version(user, app, None).await.unwrap();
        assert_eq!(current.info.number, 18);
        assert_eq!(current.files.len(), 17);
    }
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
