//! A SQLite database written before times became microseconds (they were milliseconds) reads
//! back with the same times once the new migrations have run.
#![cfg(feature = "sqlite")]

use std::time::Duration as StdDuration;

use appforge_apps::{AppStore, ListApps, SqliteAppStore};
use appforge_testing::{ManualClock, TempSqlite};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// The first migration that stores microseconds.
const MICROS_VERSION: i64 = 20_261_218_000_001;

/// Applies the crate's SQLite migrations before [`MICROS_VERSION`] only.
async fn migrate_to_milliseconds(pool: &sqlx::SqlitePool) {
    let mut old = sqlx::migrate!("./migrations/sqlite");
    old.migrations = old
        .migrations
        .iter()
        .filter(|m| m.version < MICROS_VERSION)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert!(old.migrations.len() < sqlx::migrate!("./migrations/sqlite").migrations.len());
    old.dangerous_set_table_name("_appforge_apps_migrations");
    old.run(pool).await.unwrap();
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

async fn insert_app(
    pool: &sqlx::SqlitePool,
    (id, user): (Uuid, Uuid),
    title: &str,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    deleted: Option<DateTime<Utc>>,
) {
    sqlx::query(
        "INSERT INTO generated_apps (id, user_id, title, title_folded, current_version, \
         created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
    )
    .bind(id)
    .bind(user)
    .bind(title)
    .bind(title.to_lowercase())
    .bind(ms(created))
    .bind(ms(updated))
    .bind(deleted.map(ms))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO app_versions (app_id, number, files, duration_ms, created_at) \
         VALUES (?, 1, '[]', 1500, ?)",
    )
    .bind(id)
    .bind(ms(created))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn millisecond_rows_read_back_with_their_times_after_migrating() {
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 13, 20, 5).unwrap() + Duration::milliseconds(123);
    let user = Uuid::new_v4();
    let (older, newer, deleted) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let older_at = now - Duration::days(3) + Duration::milliseconds(7);
    let newer_at = now - Duration::hours(2) + Duration::milliseconds(450);
    let edited_at = now - Duration::minutes(5) + Duration::milliseconds(999);
    let deleted_at = now - Duration::days(1) + Duration::milliseconds(1);

    let file = TempSqlite::new();
    let pool = sqlx::SqlitePool::connect(&file.url()).await.unwrap();
    migrate_to_milliseconds(&pool).await;
    insert_app(&pool, (older, user), "Older", older_at, older_at, None).await;
    insert_app(&pool, (newer, user), "Newer", newer_at, edited_at, None).await;
    insert_app(
        &pool,
        (deleted, user),
        "Gone",
        older_at,
        deleted_at,
        Some(deleted_at),
    )
    .await;

    let clock = ManualClock::at(now);
    let store = SqliteAppStore::from_pool(pool.clone())
        .with_clock(clock.shared())
        .with_retention(StdDuration::from_secs(30 * 86_400));
    store.migrate().await.unwrap();

    // The columns hold the same instants in microseconds.
    let row: (i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT created_at, updated_at, deleted_at FROM generated_apps WHERE id = ?",
    )
    .bind(deleted)
    .fetch_one(&pool)
    .await
    .unwrap();
    let us = |at: DateTime<Utc>| at.timestamp_micros();
    assert_eq!(row, (us(older_at), us(deleted_at), Some(us(deleted_at))));
    let version: i64 = sqlx::query_scalar("SELECT created_at FROM app_versions WHERE app_id = ?")
        .bind(newer)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, us(newer_at));

    // The store reads them as the times they were.
    let app = store.get_app(user.into(), newer).await.unwrap();
    assert_eq!((app.created_at, app.updated_at), (newer_at, edited_at));
    let versions = store.list_versions(user.into(), newer).await.unwrap();
    assert_eq!(versions[0].created_at, newer_at);
    assert_eq!(versions[0].duration_ms, 1500);

    // Paging newest first still walks the library in order across the converted rows.
    let first = store
        .list_apps(user.into(), &ListApps::first(1))
        .await
        .unwrap();
    assert_eq!(
        first.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        [newer]
    );
    let next = ListApps::first(1).after(first.next.unwrap());
    let second = store.list_apps(user.into(), &next).await.unwrap();
    assert_eq!(
        second.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        [older]
    );
    assert_eq!(second.items[0].created_at, older_at);

    // A day-old deletion is inside the 30-day retention: it can be undone.
    let restored = store.undelete_app(user.into(), deleted).await.unwrap();
    assert_eq!(restored.deleted_at, None);
    assert_eq!(restored.created_at, older_at);
    drop(file);
}
