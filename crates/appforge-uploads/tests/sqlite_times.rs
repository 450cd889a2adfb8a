//! A SQLite database written before times became microseconds (they were milliseconds) reads
//! back with the same times once the new migrations have run.
#![cfg(feature = "sqlite")]

use appforge_testing::TempSqlite;
use appforge_uploads::{SqliteUploadStore, UploadStore};
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
    old.dangerous_set_table_name("_appforge_uploads_migrations");
    old.run(pool).await.unwrap();
}

async fn insert(
    pool: &sqlx::SqlitePool,
    (id, owner): (Uuid, Uuid),
    created: DateTime<Utc>,
    deleted: Option<DateTime<Utc>>,
) {
    sqlx::query(
        "INSERT INTO uploads (id, owner_id, content_type, size_bytes, width, height, sha256, \
         created_at, deleted_at) VALUES (?, ?, 'image/png', 100, 1, 1, 'ab', ?, ?)",
    )
    .bind(id)
    .bind(owner)
    .bind(created.timestamp_millis())
    .bind(deleted.map(|d| d.timestamp_millis()))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn millisecond_rows_read_back_with_their_times_after_migrating() {
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 13, 20, 5).unwrap() + Duration::milliseconds(123);
    let owner = Uuid::new_v4();
    let (live, old, gone) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let live_at = now - Duration::minutes(3) + Duration::milliseconds(7);
    let old_at = now - Duration::days(40) + Duration::milliseconds(999);
    let gone_at = now - Duration::days(2) + Duration::milliseconds(1);

    let file = TempSqlite::new();
    let store = SqliteUploadStore::connect(&file.url()).await.unwrap();
    migrate_to_milliseconds(store.pool()).await;
    insert(store.pool(), (live, owner), live_at, None).await;
    insert(store.pool(), (old, owner), old_at, None).await;
    insert(store.pool(), (gone, owner), old_at, Some(gone_at)).await;

    store.migrate().await.unwrap();

    let raw: (i64, Option<i64>) =
        sqlx::query_as("SELECT created_at, deleted_at FROM uploads WHERE id = ?")
            .bind(gone)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        raw,
        (old_at.timestamp_micros(), Some(gone_at.timestamp_micros()))
    );
    assert_eq!(store.get(owner, live).await.unwrap().created_at, live_at);

    // Ranges compare against the converted values: retention at 30 days expires only the
    // 40-day-old upload, and the purge sees the deletion of two days ago only after it.
    let expired = store
        .expire_created_before(now - Duration::days(30), now)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    let purgeable = store
        .deleted_before(gone_at + Duration::milliseconds(1), 10)
        .await
        .unwrap();
    assert_eq!(purgeable.iter().map(|u| u.id).collect::<Vec<_>>(), [gone]);
    assert_eq!(purgeable[0].deleted_at, Some(gone_at));
    assert!(store.deleted_before(gone_at, 10).await.unwrap().is_empty());
    drop(file);
}
