//! The one database every crate's store shares: a SQLite file or a PostgreSQL server.

use appforge_core::db::{Connect, Pool};

/// A connection pool over the backend `DATABASE_URL` names.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file (created when missing).
    Sqlite(sqlx::SqlitePool),
    /// A PostgreSQL server.
    Postgres(sqlx::PgPool),
}

impl Database {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) with the settings of
    /// [`appforge_core::db::Connect`]: a SQLite file is created when missing, in WAL mode with
    /// a busy timeout; 8 SQLite or 16 PostgreSQL connections.
    ///
    /// # Errors
    ///
    /// An unsupported scheme or a connection error.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        match Connect::new(url).connect().await? {
            Pool::Sqlite(pool) => Ok(Self::Sqlite(pool)),
            Pool::Postgres(pool) => Ok(Self::Postgres(pool)),
            other => Err(sqlx::Error::Configuration(
                format!("DATABASE_URL names an unsupported backend: {other:?}").into(),
            )),
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
        const CHECKS: [&str; 7] = [
            "SELECT COUNT(*) FROM _appforge_quota_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_jobs_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_billing_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_apps_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_analytics_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_uploads_migrations WHERE success",
            "SELECT COUNT(*) FROM _appforge_orgs_migrations WHERE success",
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
