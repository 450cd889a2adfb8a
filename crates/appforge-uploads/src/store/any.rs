use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::UploadStore;
use super::memory::MemoryUploadStore;
#[cfg(feature = "postgres")]
use super::postgres::PgUploadStore;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteUploadStore;
use crate::{Error, Result, Upload};

/// An upload metadata store chosen at run time: memory, SQLite or PostgreSQL.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_uploads::Result<()> {
/// use appforge_uploads::AnyUploadStore;
///
/// let store = AnyUploadStore::connect("memory:").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyUploadStore {
    /// In process memory.
    Memory(MemoryUploadStore),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteUploadStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PgUploadStore),
}

macro_rules! dispatch {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            AnyUploadStore::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyUploadStore::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            AnyUploadStore::Postgres($store) => $call,
        }
    };
}

impl AnyUploadStore {
    /// Opens the store a URL names: `sqlite://...`, `postgres://...` (or `postgresql://`), or
    /// `memory:`. Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a scheme that is unknown or whose feature is off;
    /// connection errors.
    pub async fn connect(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "memory" => Ok(Self::Memory(MemoryUploadStore::new())),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(SqliteUploadStore::connect(url).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(PgUploadStore::connect(url).await?)),
            other => Err(Error::InvalidArgument(format!(
                "unsupported upload store URL scheme {other:?} (memory:, sqlite:// with the \
                 `sqlite` feature, postgres:// with the `postgres` feature)"
            ))),
        }
    }

    /// A SQLite store on an existing pool.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(SqliteUploadStore::from_pool(pool))
    }

    /// A PostgreSQL store on an existing pool.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn from_pg_pool(pool: sqlx::PgPool) -> Self {
        Self::Postgres(PgUploadStore::from_pool(pool))
    }

    /// Creates or updates the tables (nothing to do in memory).
    ///
    /// # Errors
    ///
    /// Migration errors.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => s.migrate().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => s.migrate().await,
        }
    }
}

impl Default for AnyUploadStore {
    fn default() -> Self {
        Self::Memory(MemoryUploadStore::new())
    }
}

impl From<MemoryUploadStore> for AnyUploadStore {
    fn from(store: MemoryUploadStore) -> Self {
        Self::Memory(store)
    }
}

#[cfg(feature = "sqlite")]
impl From<SqliteUploadStore> for AnyUploadStore {
    fn from(store: SqliteUploadStore) -> Self {
        Self::Sqlite(store)
    }
}

#[cfg(feature = "postgres")]
impl From<PgUploadStore> for AnyUploadStore {
    fn from(store: PgUploadStore) -> Self {
        Self::Postgres(store)
    }
}

impl UploadStore for AnyUploadStore {
    async fn insert(&self, upload: &Upload, limit_bytes: u64) -> Result<()> {
        dispatch!(self, s => s.insert(upload, limit_bytes).await)
    }

    async fn get(&self, owner: Uuid, id: Uuid) -> Result<Upload> {
        dispatch!(self, s => s.get(owner, id).await)
    }

    async fn list(&self, owner: Uuid, limit: u32) -> Result<Vec<Upload>> {
        dispatch!(self, s => s.list(owner, limit).await)
    }

    async fn soft_delete(&self, owner: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<Upload> {
        dispatch!(self, s => s.soft_delete(owner, id, at).await)
    }

    async fn expire_created_before(&self, before: DateTime<Utc>, at: DateTime<Utc>) -> Result<u64> {
        dispatch!(self, s => s.expire_created_before(before, at).await)
    }

    async fn usage(&self, owner: Uuid) -> Result<u64> {
        dispatch!(self, s => s.usage(owner).await)
    }

    async fn deleted_before(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Upload>> {
        dispatch!(self, s => s.deleted_before(before, limit).await)
    }

    async fn forget(&self, id: Uuid) -> Result<()> {
        dispatch!(self, s => s.forget(id).await)
    }
}
