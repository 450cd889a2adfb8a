use chrono::{DateTime, Utc};
use uuid::Uuid;

#[cfg(feature = "postgres")]
use super::PgEventStore;
#[cfg(feature = "sqlite")]
use super::SqliteEventStore;
use super::{EventStore, MemoryEventStore};
use crate::{AnalyticsEvent, Error, Result};

/// A store chosen at run time, typically from `DATABASE_URL`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use appforge_analytics::AnyEventStore;
///
/// let store = AnyEventStore::connect("memory://").await?;
/// store.migrate().await?;
/// assert_eq!(store.backend(), "memory");
/// # Ok::<(), appforge_analytics::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyEventStore {
    /// The in-process store.
    Memory(MemoryEventStore),
    /// The SQLite store.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteEventStore),
    /// The PostgreSQL store.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PgEventStore),
}

impl AnyEventStore {
    /// Connects to the store `url` names: `sqlite:...`, `postgres://...` /
    /// `postgresql://...`, or `memory://`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unknown scheme or a backend whose feature is off,
    /// `Error::Database` when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("memory:") {
            return Ok(Self::Memory(MemoryEventStore::new()));
        }
        if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            return Ok(Self::Sqlite(SqliteEventStore::connect(url).await?));
            #[cfg(not(feature = "sqlite"))]
            return Err(Error::Config(
                "a sqlite url needs the `sqlite` feature of appforge-analytics".into(),
            ));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Ok(Self::Postgres(PgEventStore::connect(url).await?));
            #[cfg(not(feature = "postgres"))]
            return Err(Error::Config(
                "a postgres url needs the `postgres` feature of appforge-analytics".into(),
            ));
        }
        let scheme = url.split(':').next().unwrap_or_default();
        Err(Error::Config(format!(
            "unsupported database url scheme {scheme:?} (expected sqlite, postgres or memory)"
        )))
    }

    /// A SQLite store on an existing pool.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(SqliteEventStore::from_pool(pool))
    }

    /// A PostgreSQL store on an existing pool.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn from_pg_pool(pool: sqlx::PgPool) -> Self {
        Self::Postgres(PgEventStore::from_pool(pool))
    }

    /// The backend's name: `memory`, `sqlite` or `postgres`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies the backend's migrations (nothing to do for memory).
    ///
    /// # Errors
    ///
    /// `Error::Migrate` when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.migrate().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.migrate().await,
        }
    }
}

impl EventStore for AnyEventStore {
    async fn insert_batch(&self, events: &[AnalyticsEvent]) -> Result<()> {
        match self {
            Self::Memory(store) => store.insert_batch(events).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.insert_batch(events).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.insert_batch(events).await,
        }
    }

    async fn events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AnalyticsEvent>> {
        match self {
            Self::Memory(store) => store.events_between(from, to).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.events_between(from, to).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.events_between(from, to).await,
        }
    }

    async fn first_seen_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>> {
        match self {
            Self::Memory(store) => store.first_seen_between(from, to).await,
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.first_seen_between(from, to).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.first_seen_between(from, to).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_are_refused_with_the_scheme() {
        let err = AnyEventStore::connect("mysql://localhost/db")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Config(_)));
        assert!(err.to_string().contains("\"mysql\""), "{err}");
    }
}
