use std::fmt;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

/// The `DATABASE_URL` of this run, if set and not empty.
#[must_use]
pub fn database_url() -> Option<String> {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A PostgreSQL database of its own for one test, dropped (with `FORCE`) when this value is.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// A fresh database when `DATABASE_URL` is set; otherwise `None`, after printing why the
    /// test is skipped, so that a machine without PostgreSQL runs every other test.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// let Some(db) = appforge_testing::TestDatabase::create_or_skip().await else {
    ///     return;
    /// };
    /// # let _ = db;
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Panics when `CI` is set and `DATABASE_URL` is not: there a PostgreSQL suite must run,
    /// never pass by skipping. Panics as [`TestDatabase::create`] does when the server cannot be
    /// reached.
    pub async fn create_or_skip() -> Option<Self> {
        if database_url().is_none() {
            assert!(
                std::env::var_os("CI").is_none_or(|ci| ci.is_empty()),
                "CI is set but DATABASE_URL is not: the PostgreSQL suites must run in CI"
            );
            eprintln!("skipped: needs DATABASE_URL (PostgreSQL)");
            return None;
        }
        Some(Self::create().await)
    }

    /// Creates a fresh, empty database next to the one `DATABASE_URL` names.
    ///
    /// # Panics
    ///
    /// Panics when `DATABASE_URL` is not set or the server cannot be reached; tests that should
    /// run without PostgreSQL call [`TestDatabase::create_or_skip`].
    pub async fn create() -> Self {
        let admin_url = database_url()
            .expect("DATABASE_URL must be set for PostgreSQL tests (postgres://user@host/db)");
        let name = format!("appforge_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = connect(&admin_url).await;
        // The name is generated above from a UUID: no outside text reaches this statement.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        admin.close().await.ok();
        let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a valid URL");
        url.set_path(&name);
        Self {
            name,
            url: url.into(),
            admin_url,
        }
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for this database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new pool on this database (up to 10 connections).
    ///
    /// # Panics
    ///
    /// Panics when the database cannot be reached.
    pub async fn pool(&self) -> PgPool {
        self.pool_with(PgPoolOptions::new().max_connections(10))
            .await
    }

    /// A new pool on this database with the given options.
    ///
    /// # Panics
    ///
    /// Panics when the database cannot be reached.
    pub async fn pool_with(&self, options: PgPoolOptions) -> PgPool {
        options
            .connect_with(options_for(&self.url))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to test database {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: drop the database
        // from a thread with a runtime of its own.
        let name = std::mem::take(&mut self.name);
        let admin_url = std::mem::take(&mut self.admin_url);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut admin = connect(&admin_url).await;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map(|_| ())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop a test database: {e}");
        }
    }
}

fn options_for(url: &str) -> PgConnectOptions {
    url.parse::<PgConnectOptions>()
        .expect("a valid PostgreSQL URL")
        .disable_statement_logging()
}

async fn connect(url: &str) -> sqlx::PgConnection {
    options_for(url)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at DATABASE_URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_and_drops_a_database() {
        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let name = db.name().to_owned();
        let pool = db.pool().await;
        let (current,): (String,) = sqlx::query_as("SELECT current_database()")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(current, name);
        drop(db);
        let mut admin = connect(&database_url().unwrap()).await;
        let (exists,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        assert!(!exists, "the test database outlived its guard");
    }
}
