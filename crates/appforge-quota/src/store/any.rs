use uuid::Uuid;

use super::memory::MemoryUsageStore;
#[cfg(feature = "postgres")]
use super::postgres::PgUsageStore;
#[cfg(feature = "sqlite")]
use super::sqlite::SqliteUsageStore;
use super::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::plan::{Plan, PlanId};
use crate::reservation::{HeldReservation, ReservationId, Settlement};
use crate::usage::Usage;
use crate::window::BillingPeriod;
use crate::{Error, Result};

/// A usage store chosen at run time: memory, SQLite or PostgreSQL.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> appforge_quota::Result<()> {
/// use appforge_quota::{AnyUsageStore, Quota};
///
/// let store = AnyUsageStore::connect("memory:").await?;
/// store.migrate().await?;
/// let quota = Quota::new(store);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyUsageStore {
    /// In process memory.
    Memory(MemoryUsageStore),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    Sqlite(SqliteUsageStore),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    Postgres(PgUsageStore),
}

impl AnyUsageStore {
    /// Opens the store a URL names: `sqlite://...`, `postgres://...` (or `postgresql://`), or
    /// `memory:`. Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a scheme that is unknown or whose feature is off; connection
    /// errors.
    pub async fn connect(url: &str) -> Result<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "memory" => Ok(Self::Memory(MemoryUsageStore::new())),
            #[cfg(feature = "sqlite")]
            "sqlite" => Ok(Self::Sqlite(SqliteUsageStore::connect(url).await?)),
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => Ok(Self::Postgres(PgUsageStore::connect(url).await?)),
            other => Err(Error::Config(format!(
                "unsupported quota store URL scheme {other:?} (memory:, sqlite:// with the \
                 `sqlite` feature, postgres:// with the `postgres` feature)"
            ))),
        }
    }

    /// A SQLite store on an existing pool.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    #[must_use]
    pub fn from_sqlite_pool(pool: sqlx::SqlitePool) -> Self {
        Self::Sqlite(SqliteUsageStore::from_pool(pool))
    }

    /// A PostgreSQL store on an existing pool.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    #[must_use]
    pub fn from_pg_pool(pool: sqlx::PgPool) -> Self {
        Self::Postgres(PgUsageStore::from_pool(pool))
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

#[cfg(feature = "sqlite")]
impl From<SqliteUsageStore> for AnyUsageStore {
    fn from(store: SqliteUsageStore) -> Self {
        Self::Sqlite(store)
    }
}

#[cfg(feature = "postgres")]
impl From<PgUsageStore> for AnyUsageStore {
    fn from(store: PgUsageStore) -> Self {
        Self::Postgres(store)
    }
}

impl From<MemoryUsageStore> for AnyUsageStore {
    fn from(store: MemoryUsageStore) -> Self {
        Self::Memory(store)
    }
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyUsageStore::Memory($store) => $call,
            #[cfg(feature = "sqlite")]
            AnyUsageStore::Sqlite($store) => $call,
            #[cfg(feature = "postgres")]
            AnyUsageStore::Postgres($store) => $call,
        }
    };
}

impl UsageStore for AnyUsageStore {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        dispatch!(self, s => s.reserve(cx, request).await)
    }

    async fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        dispatch!(self, s => s.commit(cx, id, tokens).await)
    }

    async fn refund(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        dispatch!(self, s => s.refund(cx, id, tokens).await)
    }

    async fn record_tokens(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<()> {
        dispatch!(self, s => s.record_tokens(cx, id, tokens).await)
    }

    async fn hold(&self, cx: StoreContext<'_>, id: ReservationId, holder: Uuid) -> Result<()> {
        dispatch!(self, s => s.hold(cx, id, holder).await)
    }

    async fn held(
        &self,
        cx: StoreContext<'_>,
        before: chrono::DateTime<chrono::Utc>,
        after: Option<ReservationId>,
        limit: u32,
    ) -> Result<Vec<HeldReservation>> {
        dispatch!(self, s => s.held(cx, before, after, limit).await)
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        dispatch!(self, s => s.usage(cx, user).await)
    }

    async fn plan(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Option<PlanId>> {
        dispatch!(self, s => s.plan(cx, user).await)
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        dispatch!(self, s => s.set_plan(cx, user, plan).await)
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        dispatch!(self, s => s.set_billing_period(cx, user, period).await)
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        dispatch!(self, s => s.sweep(cx).await)
    }

    async fn load_plans(&self) -> Result<Vec<Plan>> {
        dispatch!(self, s => s.load_plans().await)
    }

    async fn save_plan(&self, plan: &Plan) -> Result<()> {
        dispatch!(self, s => s.save_plan(plan).await)
    }
}
