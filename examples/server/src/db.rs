//! The one database every crate's store shares: a SQLite file or a PostgreSQL server.

use std::str::FromStr;

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

/// A connection pool over the backend `DATABASE_URL` names.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file (created when missing).
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL server.
    Postgres(sqlx::PgPool),
}

impl Database {
    /// Connects to `url` (`sqlite://...` or `postgres://...`), creating a SQLite file if needed.
    ///
    /// # Errors
    ///
    /// An unsupported scheme or a connection error.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with sqlite: or postgres:".into(),
            ))
        }
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// Whether every crate's migrations have been applied: each crate's migration table
    /// holds successful rows. A read only: readiness probes never migrate.
    pub async fn migrated(&self) -> Result<bool, sqlx::Error> {
        const CHECKS: [&str; 5] = [
            "SELECT COUNT(*) FROM _appforge_quota_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_jobs_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_billing_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_apps_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_analytics_migrations WHERE success",
        ];
        for sql in CHECKS {
            let applied: i64 = match self {
                Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
                Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await?,
            };
            if applied == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
