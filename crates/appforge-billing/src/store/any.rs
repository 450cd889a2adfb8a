//! A store chosen at run time, from a URL or an existing pool.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::memory::MemoryBillingStore;
#[cfg(feature = "postgres")]
use super::postgres::PgBillingStore;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteBillingStore;
use super::{BillingStore, Commit, NewEvent};
use crate::error::{Error, Result};
use crate::model::{Effect, InvoiceRecord, LedgerEntry, PendingPlanSync, SubscriptionRecord};

/// A [`BillingStore`] whose backend is picked at run time (for example from `DATABASE_URL`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyBillingStore {
    /// In memory.
    Memory(MemoryBillingStore),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteBillingStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PgBillingStore),
}

impl AnyBillingStore {
    /// Connects by URL: `memory:`, `sqlite:...` or `postgres://...` (`postgresql://` too).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a scheme whose feature is not enabled; [`Error::Store`] when
    /// the database cannot be opened.
    pub async fn connect(url: &str) -> Result<Self> {
        if url == "memory:" {
            return Ok(Self::Memory(MemoryBillingStore::new()));
        }
        if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            return Ok(Self::Sqlite(SqliteBillingStore::connect(url).await?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            return Ok(Self::Postgres(PgBillingStore::connect(url).await?));
        }
        let scheme = url.split(':').next().unwrap_or_default();
        Err(Error::Config(format!(
            "unsupported database url scheme {scheme:?} (is its feature enabled?)"
        )))
    }

    /// A store over an existing SQLite pool.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(SqliteBillingStore::new(pool))
    }

    /// A store over an existing PostgreSQL pool.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn from_pg_pool(pool: sqlx::PgPool) -> Self {
        Self::Postgres(PgBillingStore::new(pool))
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Self::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            Self::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            Self::Postgres($store) => $call,
        }
    };
}

impl BillingStore for AnyBillingStore {
    async fn commit_event(&self, event: &NewEvent<'_>, effects: &[Effect]) -> Result<Commit> {
        dispatch!(self, s => s.commit_event(event, effects).await)
    }

    async fn fail_event(&self, event: &NewEvent<'_>) -> Result<()> {
        dispatch!(self, s => s.fail_event(event).await)
    }

    async fn plan_syncs_of_event(&self, event_id: &str) -> Result<Vec<PendingPlanSync>> {
        dispatch!(self, s => s.plan_syncs_of_event(event_id).await)
    }

    async fn clear_plan_sync(&self, user: Uuid, token: Uuid) -> Result<bool> {
        dispatch!(self, s => s.clear_plan_sync(user, token).await)
    }

    async fn grace_to_enforce(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
        dispatch!(self, s => s.grace_to_enforce(now).await)
    }

    async fn mark_grace_enforced(&self, subscription: &str, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self, s => s.mark_grace_enforced(subscription, now).await)
    }

    async fn migrate(&self) -> Result<()> {
        dispatch!(self, s => s.migrate().await)
    }

    async fn event(&self, id: &str) -> Result<Option<LedgerEntry>> {
        dispatch!(self, s => s.event(id).await)
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>> {
        dispatch!(self, s => s.subscription(id).await)
    }

    async fn subscriptions_of_user(&self, user: Uuid) -> Result<Vec<SubscriptionRecord>> {
        dispatch!(self, s => s.subscriptions_of_user(user).await)
    }

    async fn pending_plan_syncs(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingPlanSync>> {
        dispatch!(self, s => s.pending_plan_syncs(before, limit).await)
    }

    async fn grace_expired(&self, now: DateTime<Utc>) -> Result<Vec<SubscriptionRecord>> {
        dispatch!(self, s => s.grace_expired(now).await)
    }

    async fn invoice(&self, id: &str) -> Result<Option<InvoiceRecord>> {
        dispatch!(self, s => s.invoice(id).await)
    }

    async fn link_customer(&self, customer: &str, user: Uuid, now: DateTime<Utc>) -> Result<()> {
        dispatch!(self, s => s.link_customer(customer, user, now).await)
    }

    async fn customer_of_user(&self, user: Uuid) -> Result<Option<String>> {
        dispatch!(self, s => s.customer_of_user(user).await)
    }

    async fn user_of_customer(&self, customer: &str) -> Result<Option<Uuid>> {
        dispatch!(self, s => s.user_of_customer(customer).await)
    }
}
