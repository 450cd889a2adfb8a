//! The SQLite store: one file, zero setup.

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::error::Error;

/// A [`BillingStore`] on SQLite. Cheap to clone (it holds a pool).
///
/// Writers take the database lock at the start of each transaction (`BEGIN IMMEDIATE`), so
/// two deliveries of one event are serialised and only one is applied.
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub struct SqliteBillingStore {
    pool: SqlitePool,
}

impl SqliteBillingStore {
    /// A store over an existing pool (shared with other crates).
    #[must_use]
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the URL is invalid or the file cannot be opened.
    pub async fn connect(url: &str) -> Result<Self> {
        let options: SqliteConnectOptions = url
            .parse::<SqliteConnectOptions>()?
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().connect_with(options).await?;
        Ok(Self::new(pool))
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn migrate_inner(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name("_appforge_billing_migrations");
        migrator.run(&self.pool).await.map_err(Error::from)
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

super::sql::sql_store!(
    SqliteBillingStore,
    sqlx::Sqlite,
    sqlx::SqliteConnection,
    lock = ""
);
