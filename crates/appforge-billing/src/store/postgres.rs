//! The PostgreSQL store: many API nodes on one database.

use sqlx::PgPool;

use crate::error::Error;

/// A [`BillingStore`] on PostgreSQL. Cheap to clone (it holds a pool).
///
/// Two deliveries of one event race on the ledger row's primary key: the second waits for the
/// first's transaction and then finds the event processed. Subscription rows are locked
/// (`FOR UPDATE`) while an event's effects are applied.
#[derive(Debug, Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub struct PgBillingStore {
    pool: PgPool,
}

impl PgBillingStore {
    /// A store over an existing pool (shared with other crates).
    #[must_use]
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Connects to `url` (`postgres://...`).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self::new(PgPool::connect(url).await?))
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn migrate_inner(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name("_appforge_billing_migrations");
        migrator.run(&self.pool).await.map_err(Error::from)
    }

    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self.pool.begin().await?)
    }
}

super::sql::sql_store!(
    PgBillingStore,
    sqlx::Postgres,
    sqlx::PgConnection,
    lock = " FOR UPDATE"
);
