//! A SQLite database written before times became microseconds (they were milliseconds) reads
//! back with the same times once the new migrations have run.

use appforge_quota::{Quota, ReservationId, SqliteUsageStore};
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
    old.dangerous_set_table_name("_appforge_quota_migrations");
    old.run(pool).await.unwrap();
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[tokio::test]
async fn millisecond_rows_read_back_with_their_times_after_migrating() {
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 13, 20, 5).unwrap() + Duration::milliseconds(123);
    let day = Utc.with_ymd_and_hms(2026, 12, 3, 0, 0, 0).unwrap();
    let month = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let period_start =
        Utc.with_ymd_and_hms(2026, 11, 20, 8, 30, 0).unwrap() + Duration::milliseconds(7);
    let period_end =
        Utc.with_ymd_and_hms(2026, 12, 20, 8, 30, 0).unwrap() + Duration::milliseconds(7);
    let created = now - Duration::seconds(90);
    let far = DateTime::from_timestamp_millis(253_402_214_400_000).unwrap();
    let (user, held_id, settled_id, holder) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );

    let file = TempSqlite::new();
    let store = SqliteUsageStore::connect(&file.url()).await.unwrap();
    migrate_to_milliseconds(store.pool()).await;
    sqlx::query(
        "INSERT INTO usage_quotas (user_id, plan, daily_generations, monthly_generations, \
         last_reset_daily, last_reset_monthly, period_start, period_end, updated_at) \
         VALUES (?, 'free', 1, 3, ?, ?, ?, ?, ?)",
    )
    .bind(user)
    .bind(ms(day))
    .bind(ms(month))
    .bind(ms(period_start))
    .bind(ms(period_end))
    .bind(ms(created))
    .execute(store.pool())
    .await
    .unwrap();
    let reservation = "INSERT INTO quota_reservations (id, user_id, cost, state, day_start, \
         month_start, created_at, expires_at, settled_at, holder) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)";
    sqlx::query(reservation)
        .bind(held_id)
        .bind(user)
        .bind("pending")
        .bind(ms(day))
        .bind(ms(month))
        .bind(ms(created))
        .bind(ms(far))
        .bind(None::<i64>)
        .bind(holder)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(reservation)
        .bind(settled_id)
        .bind(user)
        .bind("committed")
        .bind(ms(day))
        .bind(ms(month))
        .bind(ms(created))
        .bind(ms(created + Duration::minutes(10)))
        .bind(ms(created + Duration::seconds(30)))
        .bind(None::<Uuid>)
        .execute(store.pool())
        .await
        .unwrap();

    store.migrate().await.unwrap();

    // Every time column now holds the same instant in microseconds.
    let usage: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT last_reset_daily, last_reset_monthly, period_start, period_end, updated_at \
         FROM usage_quotas WHERE user_id = ?",
    )
    .bind(user)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let us = |at: DateTime<Utc>| at.timestamp_micros();
    assert_eq!(
        usage,
        (
            us(day),
            us(month),
            us(period_start),
            us(period_end),
            us(created)
        )
    );
    let settled: (i64, i64, i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT day_start, month_start, created_at, expires_at, settled_at \
         FROM quota_reservations WHERE id = ?",
    )
    .bind(settled_id)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(
        settled,
        (
            us(day),
            us(month),
            us(created),
            us(created + Duration::minutes(10)),
            Some(us(created + Duration::seconds(30)))
        )
    );

    // And the store reads them as the times they were: the day's window is still current
    // (its pending generation counts), the billing period is intact, the held reservation
    // keeps its creation time to the millisecond.
    let clock = ManualClock::at(now);
    let quota = Quota::builder(store)
        .clock(clock.shared())
        .burst_limits(false)
        .build()
        .unwrap();
    let status = quota.status(user).await.unwrap();
    assert_eq!(status.daily.used, 1);
    assert_eq!(status.daily.resets_at, day + Duration::days(1));
    assert_eq!(status.monthly.used, 3);
    let held = quota.held(now, None, 10).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].id, ReservationId::from_uuid(held_id));
    assert_eq!(held[0].holder, holder);
    assert_eq!(held[0].created_at, created);
    drop(quota);
    drop(file);
}
