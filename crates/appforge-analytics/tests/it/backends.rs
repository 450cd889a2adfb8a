//! The suite in `suite.rs`, once per backend.

use std::any::Any;

use appforge_analytics::MemoryEventStore;

type Guard = Box<dyn Any + Send>;

/// One test per suite function, each on a fresh store from `$make`.
macro_rules! suite_tests {
    ($make:path $(, #[$attr:meta])*) => {
        suite_tests!(@each $make, [$(#[$attr])*],
            round_trips_events_in_half_open_ranges,
            inserting_twice_keeps_one_row,
            stores_large_batches,
            first_seen_is_the_first_event_ever,
            empty_ranges_give_empty_metrics,
            year_end_metrics_have_known_answers,
            retention_by_signup_week,
            a_user_with_one_event,
            recorder_writes_through_the_store,
        );
    };
    (@each $make:path, $attrs:tt, $name:ident $(, $rest:ident)* $(,)?) => {
        suite_tests!(@one $make, $attrs, $name);
        suite_tests!(@each $make, $attrs $(, $rest)*);
    };
    (@each $make:path, $attrs:tt $(,)?) => {};
    (@one $make:path, [$(#[$attr:meta])*], $name:ident) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $name() {
            let Some((store, _guard)) = $make().await else {
                return;
            };
            crate::suite::$name(store).await;
        }
    };
}

async fn memory() -> Option<(MemoryEventStore, Guard)> {
    Some((MemoryEventStore::new(), Box::new(())))
}

mod memory {
    suite_tests!(super::memory);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_analytics::{AnyEventStore, EventStore};
    use appforge_testing::TempSqlite;

    use super::Guard;

    async fn store() -> Option<(AnyEventStore, Guard)> {
        let file = TempSqlite::new();
        let store = AnyEventStore::connect(&file.url()).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.migrate().await.unwrap();
        // Migrating again is a no-op.
        store.migrate().await.unwrap();
        Some((store, Box::new(file)))
    }

    suite_tests!(store);

    #[tokio::test]
    async fn shares_an_existing_pool() {
        let file = TempSqlite::new();
        let pool = sqlx::SqlitePool::connect(&file.url()).await.unwrap();
        let store = AnyEventStore::from_sqlite_pool(pool.clone());
        store.migrate().await.unwrap();
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%analytics%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let names: Vec<&str> = tables.iter().map(|(n,)| n.as_str()).collect();
        assert_eq!(
            names,
            ["_appforge_analytics_migrations", "analytics_events"]
        );
        let read = store
            .events_between(chrono::DateTime::UNIX_EPOCH, chrono::Utc::now())
            .await
            .unwrap();
        assert!(read.is_empty());
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use appforge_analytics::{AnyEventStore, EventStore};
    use appforge_testing::TestDatabase;

    use super::Guard;

    async fn store() -> Option<(AnyEventStore, Guard)> {
        let db = TestDatabase::create_or_skip().await?;
        let store = AnyEventStore::from_pg_pool(db.pool().await);
        assert_eq!(store.backend(), "postgres");
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        Some((store, Box::new(db)))
    }

    suite_tests!(store);

    #[tokio::test]
    async fn connects_by_url_and_keeps_its_own_migration_table() {
        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let store = AnyEventStore::connect(db.url()).await.unwrap();
        store.migrate().await.unwrap();
        let AnyEventStore::Postgres(pg) = &store else {
            panic!("a postgres url gives the postgres store");
        };
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM _appforge_analytics_migrations")
                .fetch_one(pg.pool())
                .await
                .unwrap();
        assert_eq!(count, 1);
        let read = store
            .events_between(chrono::DateTime::UNIX_EPOCH, chrono::Utc::now())
            .await
            .unwrap();
        assert!(read.is_empty());
    }
}
