use std::str::FromStr;
use std::time::Duration;

use appforge_core::db::{decode_time, encode_time};
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use uuid::Uuid;

use super::sql::{MIGRATIONS_TABLE, PlanRow, PlanValues, count, storage_limit, stored};
use super::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::plan::{Plan, PlanId};
use crate::reservation::{
    HeldReservation, ReservationId, ReservationState, Settlement, held_until,
};
use crate::resource::Resource;
use crate::usage::{Held, Settle, Step, Usage, answer, live, step};
use crate::window::BillingPeriod;
use crate::{Error, Result};

/// A usage store in a SQLite database: the embedded default.
///
/// Times are stored as `INTEGER` microseconds since the Unix epoch (UTC), as every appforge
/// SQLite store writes them ([`appforge_core::db::encode_time`]).
///
/// Every reservation, commit and refund runs in one `BEGIN IMMEDIATE` transaction, which
/// takes the database's write lock first, so no two callers ever decide on the same counters.
#[derive(Debug, Clone)]
pub struct SqliteUsageStore {
    pool: SqlitePool,
}

#[derive(sqlx::FromRow)]
struct UsageRow {
    user_id: Uuid,
    plan: String,
    daily_generations: i64,
    monthly_generations: i64,
    daily_chat_messages: i64,
    monthly_tokens_used: i64,
    total_tokens_used: i64,
    last_reset_daily: i64,
    last_reset_monthly: i64,
    period_start: Option<i64>,
    period_end: Option<i64>,
}

impl UsageRow {
    fn into_usage(self) -> Result<Usage> {
        let billing_period = match (self.period_start, self.period_end) {
            (Some(start), Some(end)) => Some(BillingPeriod {
                start: from_micros("period_start", start)?,
                end: from_micros("period_end", end)?,
            }),
            _ => None,
        };
        Ok(Usage {
            user: self.user_id,
            plan: PlanId::new(self.plan),
            daily_generations: count("daily_generations", self.daily_generations)?,
            monthly_generations: count("monthly_generations", self.monthly_generations)?,
            daily_chat_messages: count("daily_chat_messages", self.daily_chat_messages)?,
            monthly_tokens: count("monthly_tokens_used", self.monthly_tokens_used)?,
            total_tokens: count("total_tokens_used", self.total_tokens_used)?,
            day_start: from_micros("last_reset_daily", self.last_reset_daily)?,
            month_start: from_micros("last_reset_monthly", self.last_reset_monthly)?,
            billing_period,
        })
    }
}

/// The columns of a reservation that settling it reads.
const HELD_COLUMNS: &str = "user_id, resource, cost, state, day_start, month_start, expires_at";

#[derive(sqlx::FromRow)]
struct HeldRow {
    user_id: Uuid,
    resource: String,
    cost: i64,
    state: String,
    day_start: i64,
    month_start: i64,
    expires_at: i64,
}

impl HeldRow {
    fn held(&self) -> Result<Held> {
        Ok(Held {
            resource: Resource::parse(&self.resource)?,
            cost: u32::try_from(self.cost)
                .map_err(|_| Error::Corrupt(format!("reservation cost {}", self.cost)))?,
            day_start: from_micros("day_start", self.day_start)?,
            month_start: from_micros("month_start", self.month_start)?,
            expires_at: from_micros("expires_at", self.expires_at)?,
        })
    }
}

/// A time column back to a time.
fn from_micros(column: &str, v: i64) -> Result<DateTime<Utc>> {
    decode_time(v).map_err(|e| Error::Corrupt(format!("{column}: {e}")))
}

impl SqliteUsageStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`) in WAL
    /// mode with a 5 s busy timeout. Call [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a bad URL, [`Error::Database`] when it cannot be opened.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// A store on an existing pool (shared with other crates).
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Creates or updates this crate's tables (migration table `_appforge_quota_migrations`).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/sqlite");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }
}

async fn read_usage(conn: &mut SqliteConnection, user: Uuid) -> Result<Option<Usage>> {
    let row: Option<UsageRow> = sqlx::query_as(
        "SELECT user_id, plan, daily_generations, monthly_generations, daily_chat_messages, \
         monthly_tokens_used, total_tokens_used, last_reset_daily, last_reset_monthly, \
         period_start, period_end FROM usage_quotas WHERE user_id = ?",
    )
    .bind(user)
    .fetch_optional(conn)
    .await?;
    row.map(UsageRow::into_usage).transpose()
}

async fn read_or_fresh(
    conn: &mut SqliteConnection,
    cx: &StoreContext<'_>,
    user: Uuid,
) -> Result<Usage> {
    Ok(match read_usage(conn, user).await? {
        Some(usage) => usage,
        None => Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows),
    })
}

async fn write_usage(conn: &mut SqliteConnection, usage: &Usage, now: DateTime<Utc>) -> Result<()> {
    sqlx::query(
        "INSERT INTO usage_quotas (user_id, plan, daily_generations, monthly_generations, \
         daily_chat_messages, monthly_tokens_used, total_tokens_used, last_reset_daily, \
         last_reset_monthly, period_start, period_end, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (user_id) DO UPDATE SET plan = excluded.plan, \
         daily_generations = excluded.daily_generations, \
         monthly_generations = excluded.monthly_generations, \
         daily_chat_messages = excluded.daily_chat_messages, \
         monthly_tokens_used = excluded.monthly_tokens_used, \
         total_tokens_used = excluded.total_tokens_used, \
         last_reset_daily = excluded.last_reset_daily, \
         last_reset_monthly = excluded.last_reset_monthly, \
         period_start = excluded.period_start, period_end = excluded.period_end, \
         updated_at = excluded.updated_at",
    )
    .bind(usage.user)
    .bind(usage.plan.as_str())
    .bind(stored(usage.daily_generations))
    .bind(stored(usage.monthly_generations))
    .bind(stored(usage.daily_chat_messages))
    .bind(stored(usage.monthly_tokens))
    .bind(stored(usage.total_tokens))
    .bind(encode_time(usage.day_start))
    .bind(encode_time(usage.month_start))
    .bind(usage.billing_period.map(|p| encode_time(p.start)))
    .bind(usage.billing_period.map(|p| encode_time(p.end)))
    .bind(encode_time(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the user's expired pending reservations expired and gives their cost back.
async fn release_expired(
    conn: &mut SqliteConnection,
    cx: &StoreContext<'_>,
    usage: &mut Usage,
) -> Result<u64> {
    let rows: Vec<HeldRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE quota_reservations SET state = 'expired', settled_at = ? \
         WHERE user_id = ? AND state = 'pending' AND expires_at <= ? RETURNING {HELD_COLUMNS}"
    )))
    .bind(encode_time(cx.now))
    .bind(usage.user)
    .bind(encode_time(cx.now))
    .fetch_all(conn)
    .await?;
    for row in &rows {
        usage.release(&row.held()?);
    }
    Ok(rows.len() as u64)
}

/// Decides `request` on `conn`, inside the caller's immediate transaction: the outcome, and
/// whether anything was written (a reservation, released ones, rolled windows).
async fn reserve_on(
    conn: &mut SqliteConnection,
    cx: &StoreContext<'_>,
    request: ReserveRequest,
) -> Result<(ReserveOutcome, bool)> {
    let mut usage = read_or_fresh(conn, cx, request.user).await?;
    let released = release_expired(conn, cx, &mut usage).await?;
    let rolled = usage.roll(cx.now, cx.windows);
    let plan = cx.plans.require(&usage.plan)?;
    let refused_by = usage.refusal(plan, request.resource, request.cost);
    if refused_by.is_none() {
        usage.charge(request.resource, request.cost);
        sqlx::query(
            "INSERT INTO quota_reservations (id, user_id, resource, cost, state, day_start, \
             month_start, created_at, expires_at, holder) \
             VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
        )
        .bind(request.id.as_uuid())
        .bind(request.user)
        .bind(request.resource.as_str())
        .bind(i64::from(request.cost))
        .bind(encode_time(usage.day_start))
        .bind(encode_time(usage.month_start))
        .bind(encode_time(cx.now))
        .bind(encode_time(request.expires_at))
        .bind(request.holder)
        .execute(&mut *conn)
        .await?;
    }
    let wrote = refused_by.is_none() || released > 0 || rolled;
    if wrote {
        write_usage(conn, &usage, cx.now).await?;
    }
    Ok((ReserveOutcome { refused_by, usage }, wrote))
}

impl SqliteUsageStore {
    /// Decides `request` on `conn`, inside the caller's immediate transaction (see
    /// [`Quota::reserve_held_on_sqlite`](crate::Quota::reserve_held_on_sqlite)).
    pub(crate) async fn reserve_held_on(
        conn: &mut SqliteConnection,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        reserve_on(conn, &cx, request)
            .await
            .map(|(outcome, _)| outcome)
    }

    /// The stored plan of `user`, read on `conn`.
    pub(crate) async fn plan_on(
        conn: &mut SqliteConnection,
        user: Uuid,
    ) -> Result<Option<crate::PlanId>> {
        let plan: Option<String> =
            sqlx::query_scalar("SELECT plan FROM usage_quotas WHERE user_id = ?")
                .bind(user)
                .fetch_optional(conn)
                .await?;
        Ok(plan.map(crate::PlanId::from))
    }

    /// The reservation `id` in a new immediate transaction.
    async fn find(
        &self,
        id: ReservationId,
    ) -> Result<(sqlx::Transaction<'static, sqlx::Sqlite>, HeldRow)> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<HeldRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {HELD_COLUMNS} FROM quota_reservations WHERE id = ?"
        )))
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        Ok((tx, row.ok_or(Error::ReservationNotFound(id))?))
    }

    async fn settle(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        how: Settle,
        tokens: u64,
    ) -> Result<Settlement> {
        let (mut tx, row) = self.find(id).await?;
        let held = row.held()?;
        let state = ReservationState::parse(&row.state)?;
        match step(state, held.expires_at <= cx.now, how) {
            Step::Stay(a) => answer(id, a),
            Step::Move {
                to,
                release,
                answer: a,
            } => {
                let tokens = if to == ReservationState::Expired {
                    0
                } else {
                    tokens
                };
                sqlx::query(
                    "UPDATE quota_reservations SET state = ?, settled_at = ?, \
                     tokens = COALESCE(tokens, 0) + ? WHERE id = ?",
                )
                .bind(to.as_str())
                .bind(encode_time(cx.now))
                .bind(stored(tokens))
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
                let mut usage = read_or_fresh(&mut tx, &cx, row.user_id).await?;
                if release {
                    usage.release(&held);
                }
                if tokens > 0 {
                    usage.roll(cx.now, cx.windows);
                    usage.add_tokens(tokens);
                }
                write_usage(&mut tx, &usage, cx.now).await?;
                tx.commit().await?;
                answer(id, a)
            }
        }
    }

    /// Records tokens on, or attaches a holder to, a live pending reservation.
    async fn touch(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
        holder: Option<Uuid>,
    ) -> Result<()> {
        let (mut tx, row) = self.find(id).await?;
        let held = row.held()?;
        let state = ReservationState::parse(&row.state)?;
        if let Err(state) = live(state, held.expires_at <= cx.now) {
            drop(tx);
            if state == ReservationState::Expired {
                // Release it, as a settlement would.
                self.settle(cx, id, Settle::Refund, 0).await?;
            }
            return Err(Error::AlreadySettled { id, state });
        }
        match holder {
            Some(holder) => {
                sqlx::query(
                    "UPDATE quota_reservations SET holder = ?, expires_at = ? WHERE id = ?",
                )
                .bind(holder)
                .bind(encode_time(held_until()))
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE quota_reservations SET tokens = COALESCE(tokens, 0) + ? WHERE id = ?",
                )
                .bind(stored(tokens))
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?;
                let mut usage = read_or_fresh(&mut tx, &cx, row.user_id).await?;
                usage.roll(cx.now, cx.windows);
                usage.add_tokens(tokens);
                write_usage(&mut tx, &usage, cx.now).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

impl UsageStore for SqliteUsageStore {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let (outcome, wrote) = reserve_on(&mut tx, &cx, request).await?;
        if wrote {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    async fn commit(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.settle(cx, id, Settle::Commit, tokens).await
    }

    async fn refund(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Settlement> {
        self.settle(cx, id, Settle::Refund, tokens).await
    }

    async fn record_tokens(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<()> {
        self.touch(cx, id, tokens, None).await
    }

    async fn hold(&self, cx: StoreContext<'_>, id: ReservationId, holder: Uuid) -> Result<()> {
        self.touch(cx, id, 0, Some(holder)).await
    }

    async fn held(
        &self,
        _cx: StoreContext<'_>,
        before: DateTime<Utc>,
        after: Option<ReservationId>,
        limit: u32,
    ) -> Result<Vec<HeldReservation>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            user_id: Uuid,
            holder: Uuid,
            resource: String,
            cost: i64,
            created_at: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, user_id, holder, resource, cost, created_at FROM quota_reservations \
             WHERE state = 'pending' AND holder IS NOT NULL AND created_at < ? \
             AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?",
        )
        .bind(encode_time(before))
        .bind(after.map(|a| a.as_uuid()))
        .bind(after.map(|a| a.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(HeldReservation {
                    id: ReservationId::from_uuid(r.id),
                    user: r.user_id,
                    holder: r.holder,
                    resource: Resource::parse(&r.resource)?,
                    cost: u32::try_from(r.cost)
                        .map_err(|_| Error::Corrupt(format!("reservation cost {}", r.cost)))?,
                    created_at: from_micros("created_at", r.created_at)?,
                })
            })
            .collect()
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let Some(mut usage) = read_usage(&mut tx, user).await? else {
            return Ok(Usage::fresh(
                user,
                cx.plans.default_plan().id.clone(),
                cx.now,
                cx.windows,
            ));
        };
        if release_expired(&mut tx, &cx, &mut usage).await? > 0 {
            write_usage(&mut tx, &usage, cx.now).await?;
            tx.commit().await?;
        }
        usage.roll(cx.now, cx.windows);
        Ok(usage)
    }

    async fn plan(&self, _cx: StoreContext<'_>, user: Uuid) -> Result<Option<PlanId>> {
        let plan: Option<String> =
            sqlx::query_scalar("SELECT plan FROM usage_quotas WHERE user_id = ?")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        Ok(plan.map(PlanId::from))
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut usage = read_or_fresh(&mut tx, &cx, user).await?;
        usage.plan = plan.clone();
        write_usage(&mut tx, &usage, cx.now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut usage = read_or_fresh(&mut tx, &cx, user).await?;
        usage.billing_period = period;
        write_usage(&mut tx, &usage, cx.now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let expired: Vec<HeldRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE quota_reservations SET state = 'expired', settled_at = ? \
             WHERE state = 'pending' AND expires_at <= ? RETURNING {HELD_COLUMNS}"
        )))
        .bind(encode_time(cx.now))
        .bind(encode_time(cx.now))
        .fetch_all(&mut *tx)
        .await?;
        let (day, _) = cx.windows.day(cx.now);
        let (month, _) = cx.windows.calendar_month(cx.now);
        let stale: Vec<Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM usage_quotas WHERE last_reset_daily < ? \
             OR last_reset_monthly < ? OR period_end IS NOT NULL",
        )
        .bind(encode_time(day))
        .bind(encode_time(month))
        .fetch_all(&mut *tx)
        .await?;
        let mut users: Vec<Uuid> = expired.iter().map(|r| r.user_id).chain(stale).collect();
        users.sort_unstable();
        users.dedup();
        let mut report = SweepReport {
            released: expired.len() as u64,
            reset: 0,
        };
        for user in users {
            let Some(mut usage) = read_usage(&mut tx, user).await? else {
                continue;
            };
            let mut changed = false;
            for row in expired.iter().filter(|r| r.user_id == user) {
                usage.release(&row.held()?);
                changed = true;
            }
            if usage.roll(cx.now, cx.windows) {
                report.reset += 1;
                changed = true;
            }
            if changed {
                write_usage(&mut tx, &usage, cx.now).await?;
            }
        }
        tx.commit().await?;
        Ok(report)
    }

    async fn load_plans(&self) -> Result<Vec<Plan>> {
        let rows: Vec<PlanRow> = sqlx::query_as(
            "SELECT id, name, description, price_monthly, price_yearly, daily_limit, \
             monthly_limit, features, stripe_price_id_monthly, stripe_price_id_yearly, \
             is_active, monthly_token_limit, burst_requests, burst_period_ms, burst_size, \
             priority, daily_chat_limit, max_running_jobs, request_limits, \
             storage_limit_bytes FROM pricing_plans ORDER BY position, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(PlanRow::into_plan).collect()
    }

    async fn save_plan(&self, plan: &Plan) -> Result<()> {
        let v = PlanValues::new(plan)?;
        sqlx::query(
            "INSERT INTO pricing_plans (id, name, description, price_monthly, price_yearly, \
             daily_limit, monthly_limit, features, stripe_price_id_monthly, \
             stripe_price_id_yearly, is_active, monthly_token_limit, burst_requests, \
             burst_period_ms, burst_size, priority, daily_chat_limit, max_running_jobs, \
             request_limits, storage_limit_bytes, position) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
             (SELECT COALESCE(MAX(position), 0) + 1 FROM pricing_plans)) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             description = excluded.description, price_monthly = excluded.price_monthly, \
             price_yearly = excluded.price_yearly, daily_limit = excluded.daily_limit, \
             monthly_limit = excluded.monthly_limit, features = excluded.features, \
             stripe_price_id_monthly = excluded.stripe_price_id_monthly, \
             stripe_price_id_yearly = excluded.stripe_price_id_yearly, \
             is_active = excluded.is_active, monthly_token_limit = excluded.monthly_token_limit, \
             burst_requests = excluded.burst_requests, \
             burst_period_ms = excluded.burst_period_ms, burst_size = excluded.burst_size, \
             priority = excluded.priority, daily_chat_limit = excluded.daily_chat_limit, \
             max_running_jobs = excluded.max_running_jobs, \
             request_limits = excluded.request_limits, \
             storage_limit_bytes = excluded.storage_limit_bytes",
        )
        .bind(plan.id.as_str())
        .bind(&plan.name)
        .bind(plan.description.as_deref())
        .bind(plan.price_monthly.map(i64::from))
        .bind(plan.price_yearly.map(i64::from))
        .bind(plan.daily_generations.map(i64::from))
        .bind(plan.monthly_generations.map(i64::from))
        .bind(&v.features)
        .bind(plan.stripe_price_id_monthly.as_deref())
        .bind(plan.stripe_price_id_yearly.as_deref())
        .bind(plan.is_active)
        .bind(v.token_limit)
        .bind(v.burst_requests)
        .bind(v.burst_period_ms)
        .bind(v.burst_size)
        .bind(i64::from(plan.priority))
        .bind(plan.daily_chat_messages.map(i64::from))
        .bind(plan.max_running_jobs.map(i64::from))
        .bind(&v.request_limits)
        .bind(storage_limit(plan)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
