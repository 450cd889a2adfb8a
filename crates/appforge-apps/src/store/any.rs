use appforge_core::Owner;
use uuid::Uuid;

use super::AppStore;
use super::memory::MemoryAppStore;
#[cfg(feature = "postgres")]
use super::postgres::PgAppStore;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteAppStore;
use crate::app::{App, PublishedApp, Saved, Version, VersionInfo};
use crate::request::{AppPage, AppPatch, ListApps, NewApp, NewVersion};
use crate::{Error, Result};

/// An app store chosen at run time: memory, SQLite or PostgreSQL.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_apps::Result<()> {
/// use appforge_apps::AnyAppStore;
///
/// let store = AnyAppStore::connect("memory:").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyAppStore {
    /// In process memory.
    Memory(MemoryAppStore),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteAppStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PgAppStore),
}

macro_rules! dispatch {
    ($self:expr, $store:ident => $call:expr) => {
        match $self {
            AnyAppStore::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyAppStore::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            AnyAppStore::Postgres($store) => $call,
        }
    };
}

impl AnyAppStore {
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
            "memory" => Ok(Self::Memory(MemoryAppStore::new())),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(SqliteAppStore::connect(url).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(PgAppStore::connect(url).await?)),
            other => Err(Error::InvalidArgument(format!(
                "unsupported app store URL scheme {other:?} (memory:, sqlite:// with the \
                 `sqlite` feature, postgres:// with the `postgres` feature)"
            ))),
        }
    }

    /// A SQLite store on an existing pool.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(SqliteAppStore::from_pool(pool))
    }

    /// A PostgreSQL store on an existing pool.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn from_pg_pool(pool: sqlx::PgPool) -> Self {
        Self::Postgres(PgAppStore::from_pool(pool))
    }

    /// Reads time from `clock` (the system clock by default).
    #[must_use]
    pub fn with_clock(self, clock: appforge_core::SharedClock) -> Self {
        match self {
            Self::Memory(s) => Self::Memory(s.with_clock(clock)),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => Self::Sqlite(s.with_clock(clock)),
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => Self::Postgres(s.with_clock(clock)),
        }
    }

    /// How long a deleted app can be restored (default
    /// [`DEFAULT_RETENTION`](crate::DEFAULT_RETENTION), 30 days).
    #[must_use]
    pub fn with_retention(self, retention: std::time::Duration) -> Self {
        match self {
            Self::Memory(s) => Self::Memory(s.with_retention(retention)),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(s) => Self::Sqlite(s.with_retention(retention)),
            #[cfg(feature = "postgres")]
            Self::Postgres(s) => Self::Postgres(s.with_retention(retention)),
        }
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

impl From<MemoryAppStore> for AnyAppStore {
    fn from(store: MemoryAppStore) -> Self {
        Self::Memory(store)
    }
}

#[cfg(feature = "sqlite")]
impl From<SqliteAppStore> for AnyAppStore {
    fn from(store: SqliteAppStore) -> Self {
        Self::Sqlite(store)
    }
}

#[cfg(feature = "postgres")]
impl From<PgAppStore> for AnyAppStore {
    fn from(store: PgAppStore) -> Self {
        Self::Postgres(store)
    }
}

impl AppStore for AnyAppStore {
    async fn create_app(&self, owner: Owner, app: NewApp) -> Result<Saved> {
        dispatch!(self, s => s.create_app(owner, app).await)
    }

    async fn add_version(
        &self,
        owner: Owner,
        app: Uuid,
        base_version: u32,
        version: NewVersion,
    ) -> Result<Saved> {
        dispatch!(self, s => s.add_version(owner, app, base_version, version).await)
    }

    async fn get_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        dispatch!(self, s => s.get_app(owner, app).await)
    }

    async fn get_version(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<Version> {
        dispatch!(self, s => s.get_version(owner, app, number).await)
    }

    async fn list_apps(&self, owner: Owner, request: &ListApps) -> Result<AppPage> {
        dispatch!(self, s => s.list_apps(owner, request).await)
    }

    async fn list_versions(&self, owner: Owner, app: Uuid) -> Result<Vec<VersionInfo>> {
        dispatch!(self, s => s.list_versions(owner, app).await)
    }

    async fn update_app(&self, owner: Owner, app: Uuid, patch: AppPatch) -> Result<App> {
        dispatch!(self, s => s.update_app(owner, app, patch).await)
    }

    async fn delete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        dispatch!(self, s => s.delete_app(owner, app).await)
    }

    async fn undelete_app(&self, owner: Owner, app: Uuid) -> Result<App> {
        dispatch!(self, s => s.undelete_app(owner, app).await)
    }

    async fn purge_deleted(&self) -> Result<u64> {
        dispatch!(self, s => s.purge_deleted().await)
    }

    async fn expired_apps(&self, limit: u32) -> Result<Vec<App>> {
        dispatch!(self, s => s.expired_apps(limit).await)
    }

    async fn purge_apps(&self, apps: &[Uuid]) -> Result<u64> {
        dispatch!(self, s => s.purge_apps(apps).await)
    }

    async fn publish(&self, owner: Owner, app: Uuid, number: Option<u32>) -> Result<App> {
        dispatch!(self, s => s.publish(owner, app, number).await)
    }

    async fn unpublish(&self, owner: Owner, app: Uuid) -> Result<App> {
        dispatch!(self, s => s.unpublish(owner, app).await)
    }

    async fn published(&self, slug: &str) -> Result<PublishedApp> {
        dispatch!(self, s => s.published(slug).await)
    }
}
