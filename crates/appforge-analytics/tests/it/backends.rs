//! The exported conformance suite (`appforge_analytics::testing`), once per backend.

use appforge_analytics::MemoryEventStore;
use appforge_analytics::testing::Backend;

async fn memory() -> Option<Backend<MemoryEventStore>> {
    Some(Backend::new(MemoryEventStore::new()))
}

mod memory {
    appforge_analytics::event_store_suite!(super::memory);
}

/// A store implemented outside the crate, as a host would: it keeps events in its own map,
/// by id, and passes the same suite.
mod outside {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use appforge_analytics::testing::Backend;
    use appforge_analytics::{AnalyticsEvent, EventStore, Result};
    use chrono::{DateTime, SubsecRound, Utc};
    use parking_lot::Mutex;
    use uuid::Uuid;

    #[derive(Debug, Clone, Default)]
    struct MapStore {
        events: Arc<Mutex<BTreeMap<Uuid, AnalyticsEvent>>>,
    }

    impl EventStore for MapStore {
        async fn insert_batch(&self, events: &[AnalyticsEvent]) -> Result<()> {
            let mut stored = self.events.lock();
            for event in events {
                stored.entry(event.id).or_insert_with(|| {
                    let mut event = event.clone();
                    // Microseconds, as the SQL stores keep them.
                    event.created_at = event.created_at.trunc_subsecs(6);
                    event
                });
            }
            Ok(())
        }

        async fn events_between(
            &self,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<AnalyticsEvent>> {
            let mut found: Vec<AnalyticsEvent> = self
                .events
                .lock()
                .values()
                .filter(|e| e.created_at >= from && e.created_at < to)
                .cloned()
                .collect();
            found.sort_by_key(|e| (e.created_at, e.id));
            Ok(found)
        }

        async fn first_seen_between(
            &self,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
            let mut first: BTreeMap<Uuid, DateTime<Utc>> = BTreeMap::new();
            for event in self.events.lock().values() {
                first
                    .entry(event.user_id)
                    .and_modify(|at| *at = (*at).min(event.created_at))
                    .or_insert(event.created_at);
            }
            Ok(first
                .into_iter()
                .filter(|(_, at)| *at >= from && *at < to)
                .collect())
        }
    }

    async fn store() -> Option<Backend<MapStore>> {
        Some(Backend::new(MapStore::default()))
    }

    appforge_analytics::event_store_suite!(store);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use appforge_analytics::testing::Backend;
    use appforge_analytics::{AnyEventStore, EventStore};
    use appforge_testing::TempSqlite;

    async fn store() -> Option<Backend<AnyEventStore>> {
        let file = TempSqlite::new();
        let store = AnyEventStore::connect(&file.url()).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        store.migrate().await.unwrap();
        // Migrating again is a no-op.
        store.migrate().await.unwrap();
        Some(Backend::new(store).guard(file))
    }

    appforge_analytics::event_store_suite!(store);

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
    use appforge_analytics::testing::Backend;
    use appforge_analytics::{AnyEventStore, EventStore};
    use appforge_testing::TestDatabase;

    async fn store() -> Option<Backend<AnyEventStore>> {
        let db = TestDatabase::create_or_skip().await?;
        let store = AnyEventStore::from_pg_pool(db.pool().await);
        assert_eq!(store.backend(), "postgres");
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        Some(Backend::new(store).guard(db))
    }

    appforge_analytics::event_store_suite!(store);

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
