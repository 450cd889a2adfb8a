//! A SQLite database written before times became microseconds (they were RFC 3339 text, as
//! sqlx writes chrono times) reads back with the same times, to the microsecond, once the new
//! migrations have run.
#![cfg(feature = "sqlite")]

use appforge_billing::{BillingStore, SqliteBillingStore};
use appforge_testing::TempSqlite;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The first migration that stores microseconds.
const MICROS_VERSION: i64 = 3;

/// Applies the crate's SQLite migrations before [`MICROS_VERSION`] only.
async fn migrate_to_text(pool: &sqlx::SqlitePool) {
    let mut old = sqlx::migrate!("./migrations/sqlite");
    old.migrations = old
        .migrations
        .iter()
        .filter(|m| m.version < MICROS_VERSION)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert!(old.migrations.len() < sqlx::migrate!("./migrations/sqlite").migrations.len());
    old.dangerous_set_table_name("_appforge_billing_migrations");
    old.run(pool).await.unwrap();
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

async fn exec(pool: &sqlx::SqlitePool, sql: &'static str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

#[tokio::test]
async fn text_rows_read_back_with_their_times_after_migrating() {
    let user = Uuid::from_u128(0x5eed);
    let file = TempSqlite::new();
    let store = SqliteBillingStore::connect(&file.url()).await.unwrap();
    let pool = store.pool().clone();
    migrate_to_text(&pool).await;
    // The text as sqlx wrote it: a fraction only when not zero (3, 6 or 9 digits), `+00:00`.
    exec(
        &pool,
        "INSERT INTO stripe_events (id, type, created, api_version, received_at, processed_at, \
         status, attempts, error, payload) VALUES ('evt_1', 'invoice.paid', \
         '2026-12-03T13:20:05+00:00', NULL, '2026-12-03T13:20:06.123456+00:00', \
         '2026-12-03T13:20:06.987654321+00:00', 'processed', 1, NULL, '{}')",
    )
    .await;
    exec(
        &pool,
        "INSERT INTO stripe_customers (stripe_customer_id, user_id, linked_at) VALUES \
         ('cus_old', X'00000000000000000000000000005eed', '2026-12-03T09:59:59.999+00:00'), \
         ('cus_new', X'00000000000000000000000000005eed', '2026-12-03T10:00:00+00:00')",
    )
    .await;
    exec(
        &pool,
        "INSERT INTO subscriptions (stripe_subscription_id, stripe_customer_id, user_id, plan, \
         status, current_period_start, current_period_end, past_due, grace_until, created_at, \
         updated_at, grace_enforced_until) VALUES ('sub_1', 'cus_new', \
         X'00000000000000000000000000005eed', 'pro', 'past_due', '2026-11-20T08:30:00+00:00', \
         '2026-12-20T08:30:00+00:00', TRUE, '2026-12-02T00:00:00.25+00:00', \
         '2026-11-20T08:30:01.5+00:00', '2026-12-01T00:00:00.000001+00:00', NULL)",
    )
    .await;
    exec(
        &pool,
        "INSERT INTO plan_sync_pending (user_id, event_id, token, pending_since) VALUES \
         (X'00000000000000000000000000005eed', 'evt_1', X'00000000000000000000000000000001', \
         '2026-12-03T13:20:06.5+00:00')",
    )
    .await;

    store.migrate().await.unwrap();

    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT typeof(created) || typeof(received_at) FROM stripe_events",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(kinds, ["integerinteger"]);

    let event = store.event("evt_1").await.unwrap().unwrap();
    assert_eq!(event.created, at("2026-12-03T13:20:05Z"));
    assert_eq!(event.received_at, at("2026-12-03T13:20:06.123456Z"));
    // Nanoseconds beyond the microsecond are dropped, as PostgreSQL's timestamptz does.
    assert_eq!(event.processed_at, Some(at("2026-12-03T13:20:06.987654Z")));

    let sub = store.subscription("sub_1").await.unwrap().unwrap();
    assert_eq!(sub.current_period_start, Some(at("2026-11-20T08:30:00Z")));
    assert_eq!(sub.current_period_end, Some(at("2026-12-20T08:30:00Z")));
    assert_eq!(sub.grace_until, Some(at("2026-12-02T00:00:00.25Z")));
    assert_eq!(sub.created_at, at("2026-11-20T08:30:01.5Z"));
    assert_eq!(sub.updated_at, at("2026-12-01T00:00:00.000001Z"));

    // Comparisons are numeric on the converted columns.
    let now = at("2026-12-03T13:20:07Z");
    let expired = store.grace_expired(now).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert!(
        store
            .grace_expired(at("2026-12-02T00:00:00.249999Z"))
            .await
            .unwrap()
            .is_empty()
    );
    let pending = store.pending_plan_syncs(now, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].user_id, user);
    assert_eq!(pending[0].pending_since, at("2026-12-03T13:20:06.5Z"));
    assert_eq!(
        store.customer_of_user(user).await.unwrap().as_deref(),
        Some("cus_new")
    );
    drop(file);
}
