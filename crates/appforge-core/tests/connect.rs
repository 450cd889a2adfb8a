//! Connect-by-URL on SQLite and PostgreSQL, and the transient check on real errors.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

use std::time::Duration;

use appforge_core::db::{self, Backend, Connect, Pool};
use sqlx::Connection;

#[tokio::test]
async fn sqlite_url_creates_the_file_in_wal_mode_with_a_busy_timeout() {
    let file = appforge_testing::TempSqlite::new();
    assert!(!file.path().exists());
    let pool = Connect::new(file.url())
        .max_connections(2)
        .connect()
        .await
        .unwrap();
    assert_eq!(pool.backend(), Backend::Sqlite);
    let Pool::Sqlite(sqlite) = &pool else {
        panic!("expected a SQLite pool, got {pool:?}");
    };
    assert!(file.path().exists(), "the file is created when missing");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(sqlite)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(sqlite)
        .await
        .unwrap();
    assert_eq!(timeout, 10_000);
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(sqlite)
        .await
        .unwrap();
    assert_eq!(synchronous, 1, "NORMAL");
    pool.close().await;
}

#[tokio::test]
async fn postgres_url_opens_a_pool() {
    let Some(test_db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    let pool = Connect::new(test_db.url())
        .max_connections(3)
        .connect()
        .await
        .unwrap();
    assert_eq!(pool.backend(), Backend::Postgres);
    let Pool::Postgres(pg) = &pool else {
        panic!("expected a PostgreSQL pool, got {pool:?}");
    };
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(pg).await.unwrap();
    assert_eq!(one, 1);
    assert_eq!(pg.options().get_max_connections(), 3);
    pool.close().await;
}

/// The backend process serving the statement.
async fn backend_pid(pool: &sqlx::PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
}

/// Waits until the pool's connection is back in it, idle.
async fn idle(pool: &sqlx::PgPool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pool.num_idle() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection never came back"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn terminate(admin: &sqlx::PgPool, pid: i32) {
    let done: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(admin)
        .await
        .unwrap();
    assert!(done, "backend {pid} terminated");
}

#[tokio::test]
async fn by_default_a_connection_the_server_closed_is_replaced_before_use() {
    let Some(test_db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    let admin = test_db.pool().await;
    assert_eq!(Connect::DEFAULT_TEST_IDLE_AFTER, Duration::ZERO);
    let pool = Connect::new(test_db.url())
        .max_connections(1)
        .postgres()
        .await
        .unwrap();
    let first = backend_pid(&pool).await.unwrap();
    idle(&pool).await;
    terminate(&admin, first).await;
    // The ping on acquire finds the connection dead: the pool opens another, and the
    // statement never sees the broken one.
    let second = backend_pid(&pool).await.unwrap();
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_connection_used_within_the_threshold_is_handed_out_untested() {
    let Some(test_db) = appforge_testing::TestDatabase::create_or_skip().await else {
        return;
    };
    let admin = test_db.pool().await;
    let pool = Connect::new(test_db.url())
        .max_connections(1)
        .test_idle_after(Duration::from_secs(3600))
        .postgres()
        .await
        .unwrap();
    let first = backend_pid(&pool).await.unwrap();
    // One connection serves every statement.
    assert_eq!(backend_pid(&pool).await.unwrap(), first);
    // Back in the pool (sqlx pings it on the way, on a task of its own) before it is killed.
    idle(&pool).await;
    terminate(&admin, first).await;
    // The price of not testing: the next statement meets the broken connection and fails,
    // once; the pool closes it when it comes back, and the one after runs on a new one.
    let error = backend_pid(&pool).await.unwrap_err();
    assert!(
        db::is_transient(&error) || error.as_database_error().is_some(),
        "{error:?}"
    );
    let second = backend_pid(&pool).await.unwrap();
    assert_ne!(first, second);
}

#[tokio::test]
async fn other_schemes_are_a_configuration_error() {
    for url in ["memory:", "mysql://localhost/app", "app.db"] {
        let error = Connect::new(url).connect().await.unwrap_err();
        assert!(
            matches!(error, sqlx::Error::Configuration(_)),
            "{url}: {error}"
        );
        assert!(!db::is_transient(&error), "{url}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    // Port 1 on the loopback interface: nothing listens there. One connection rather than a
    // pool, which would retry a transient error until its acquire timeout.
    let error = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:1/app")
        .await
        .unwrap_err();
    assert!(matches!(error, sqlx::Error::Io(_)), "{error:?}");
    assert!(db::is_transient(&error), "{error:?}");
}

#[tokio::test]
async fn a_sqlite_write_lock_held_elsewhere_is_transient() {
    let file = appforge_testing::TempSqlite::new();
    let connect = || {
        Connect::new(file.url())
            .busy_timeout(Duration::ZERO)
            .max_connections(1)
    };
    let holder = connect().sqlite().await.unwrap();
    let waiter = connect().sqlite().await.unwrap();
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(&holder)
        .await
        .unwrap();
    let mut conn = holder.acquire().await.unwrap();
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let error = sqlx::query("INSERT INTO t VALUES (2)")
        .execute(&waiter)
        .await
        .unwrap_err();
    let code = error
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert!(db::is_transient(&error), "{error:?} (code {code:?})");
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn migrations_are_recorded_in_the_crate_table() {
    let file = appforge_testing::TempSqlite::new();
    let pool = Connect::new(file.url()).sqlite().await.unwrap();
    let dir = tempdir_with_migration();
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    db::migrate(migrator, db::migrations_table("demo"), &pool)
        .await
        .unwrap();
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _appforge_demo_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(applied, 1);
    let shared: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = '_sqlx_migrations'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(shared, 0, "sqlx's shared table is not used");
    sqlx::query("INSERT INTO demo (x) VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
}

fn tempdir_with_migration() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("20260101000000_demo.sql"),
        "CREATE TABLE demo (x INTEGER);",
    )
    .unwrap();
    dir
}
