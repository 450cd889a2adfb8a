//! A SQLite database written before times became microseconds (they were milliseconds) reads
//! back with the same times once the new migrations have run.
#![cfg(feature = "sqlite")]

use appforge_orgs::{AuditQuery, AuditRange, OrgStore, SqliteOrgStore};
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
    old.dangerous_set_table_name("_appforge_orgs_migrations");
    old.run(pool).await.unwrap();
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

#[tokio::test]
async fn millisecond_rows_read_back_with_their_times_after_migrating() {
    let now = Utc.with_ymd_and_hms(2026, 12, 3, 13, 20, 5).unwrap() + Duration::milliseconds(123);
    let created = now - Duration::days(10) + Duration::milliseconds(7);
    let joined = now - Duration::days(9) + Duration::milliseconds(450);
    let invited = now - Duration::hours(1) + Duration::milliseconds(999);
    let invitation_expires = now + Duration::days(6) + Duration::milliseconds(1);
    let key_used = now - Duration::minutes(2) + Duration::milliseconds(3);
    let audited = now - Duration::minutes(30) + Duration::milliseconds(321);
    let (org, owner, invitation, key, entry) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );

    let file = TempSqlite::new();
    let pool = sqlx::SqlitePool::connect(&file.url()).await.unwrap();
    migrate_to_milliseconds(&pool).await;
    sqlx::query(
        "INSERT INTO orgs (id, name, slug, created_by, created_at) VALUES (?, 'Acme', 'acme', ?, ?)",
    )
    .bind(org)
    .bind(owner)
    .bind(ms(created))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role, joined_at) VALUES (?, ?, 'owner', ?)",
    )
    .bind(org)
    .bind(owner)
    .bind(ms(joined))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO org_invitations (id, org_id, email, role, invited_by, created_at, \
         expires_at, token_hash) VALUES (?, ?, 'a@example.com', 'member', ?, ?, ?, ?)",
    )
    .bind(invitation)
    .bind(org)
    .bind(owner)
    .bind(ms(invited))
    .bind(ms(invitation_expires))
    .bind(vec![1u8; 32])
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO org_api_keys (id, org_id, name, role, prefix, secret_hash, created_by, \
         created_at, expires_at, last_used_at) VALUES (?, ?, 'ci', 'member', 'afk_abc', ?, ?, ?, ?, ?)",
    )
    .bind(key)
    .bind(org)
    .bind(vec![2u8; 32])
    .bind(owner)
    .bind(ms(created))
    .bind(ms(invitation_expires))
    .bind(ms(key_used))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO org_audit_log (id, org_id, seq, time, actor_kind, action, detail, \
         prev_hash, hash) VALUES (?, ?, 1, ?, 'system', 'org.create', '{}', ?, ?)",
    )
    .bind(entry)
    .bind(org)
    .bind(ms(audited))
    .bind(vec![0u8; 32])
    .bind(vec![3u8; 32])
    .execute(&pool)
    .await
    .unwrap();

    let clock = ManualClock::at(now);
    let store = SqliteOrgStore::from_pool(pool.clone()).with_clock(clock.shared());
    store.migrate().await.unwrap();

    let raw: (i64, i64) =
        sqlx::query_as("SELECT created_at, expires_at FROM org_invitations WHERE id = ?")
            .bind(invitation)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        raw,
        (
            invited.timestamp_micros(),
            invitation_expires.timestamp_micros()
        )
    );

    assert_eq!(
        store.get_org(org).await.unwrap().unwrap().created_at,
        created
    );
    assert_eq!(store.members(org).await.unwrap()[0].joined_at, joined);
    let invitations = store.invitations(org).await.unwrap();
    assert_eq!(
        (invitations[0].created_at, invitations[0].expires_at),
        (invited, invitation_expires)
    );
    // The invitation expires next week: it still holds a seat beside the owner's.
    assert_eq!(store.seats_used(org).await.unwrap(), 2);
    let keys = store.api_keys(org).await.unwrap();
    assert_eq!(
        (keys[0].created_at, keys[0].expires_at, keys[0].last_used_at),
        (created, Some(invitation_expires), Some(key_used))
    );

    // Audit ranges compare against the converted times, to the millisecond.
    let around = |from: DateTime<Utc>, to: DateTime<Utc>| {
        AuditQuery::new(AuditRange::between(Some(from), Some(to)), 10)
    };
    let page = store
        .audit_page(org, &around(audited, audited + Duration::milliseconds(1)))
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].time, audited);
    let before = store
        .audit_page(org, &around(audited - Duration::hours(1), audited))
        .await
        .unwrap();
    assert!(before.is_empty());
    drop(file);
}
