//! The PostgreSQL store: the store and its `UsageStore` calls; the statements, the single-call
//! path and the batch path live in the modules beside it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use super::sql::{PlanRow, PlanValues, storage_limit};
use super::{ReserveOutcome, ReserveRequest, StoreContext, SweepReport, UsageStore};
use crate::plan::{Plan, PlanId};
use crate::reservation::{HeldReservation, ReservationId, Settlement};
use crate::resource::Resource;
use crate::usage::{Settle, Usage};
use crate::window::BillingPeriod;
use crate::{Error, Result};

mod batch;
mod single;
mod statements;

use batch::*;
use statements::*;

/// A usage store in PostgreSQL, for many API and worker processes on one database.
///
/// A reservation is one conditional `UPDATE ... RETURNING` (with the reservation row inserted
/// by the same statement): the limits are checked against the row PostgreSQL has locked, so
/// concurrent callers in any number of processes never admit more than a limit. Time is the
/// quota clock's, passed as a parameter, never the database's `now()`.
///
/// **Batching.** Reservations and commits that arrive while others are running are carried
/// together by one statement (one round trip, one transaction, one WAL flush), which is what
/// lets a busy store do several thousand pairs a second on a small machine. A batched
/// reservation is still one atomic statement: it locks the users' rows in user order, admits
/// each user's calls in arrival order while they fit, and inserts the reservations. A call the
/// batch did not admit (a limit reached, a new user, a statement PostgreSQL refused) takes
/// the single-call path, so every answer is the one a lone call would get. A lone call runs at
/// once (after yielding twice to the scheduler, so that callers woken together go together):
/// there is no timer. [`batching`](Self::batching) sets how many batch statements of each kind
/// run at a time, or turns batching off.
///
/// **Connections.** Batch statements run on connections the store opens itself, with the
/// pool's connect options, and keeps between batches: one per batch statement in flight (two
/// by default), outside the pool's `max_connections`. A kept connection saves the ping of a
/// pool checkout and runs on a server process that has already planned the statement. One
/// idle for ten seconds is pinged before use, one whose statement failed is dropped, and when
/// none can be opened a batch runs on a pool connection.
#[derive(Debug, Clone)]
pub struct PgUsageStore {
    pool: PgPool,
    batches: Option<Arc<Batches>>,
}

/// How many batch statements of each kind run at a time, by default.
pub const DEFAULT_BATCH_STATEMENTS: usize = 1;

/// How many times a reservation retries after losing a race (a plan change, a release, a
/// first row) before answering with what it last read.
const MAX_ATTEMPTS: usize = 16;

impl UsageStore for PgUsageStore {
    async fn reserve(
        &self,
        cx: StoreContext<'_>,
        request: ReserveRequest,
    ) -> Result<ReserveOutcome> {
        let limits = Arc::new(Limits::of(cx.plans));
        let (day, cal) = starts(cx.windows, cx.now);
        let mut batched = None;
        // Chat messages are fewer than generations: they take the single-call path.
        if let (Resource::Generation, Some(batches)) = (request.resource, &self.batches) {
            let ask = ReserveAsk {
                request,
                now: cx.now,
                windows: cx.windows,
                limits: Arc::clone(&limits),
            };
            batched = Some(batches.reserve.submit(ask).await.map_err(unanswered)??);
        }
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            // The batch's answer first: granted, or not admitted (straight to finding out why).
            let granted: Option<UsageRow> = match batched.take() {
                Some(answer) => answer,
                None => match request.resource {
                    Resource::Generation => {
                        sqlx::query_as(AssertSqlSafe(RESERVE.as_str()))
                            .bind(request.user)
                            .bind(cx.now)
                            .bind(i64::from(request.cost))
                            .bind(request.id.as_uuid())
                            .bind(request.expires_at)
                            .bind(day)
                            .bind(cal)
                            .bind(&limits.ids)
                            .bind(&limits.daily)
                            .bind(&limits.monthly)
                            .bind(&limits.tokens)
                            .bind(request.holder)
                            .fetch_optional(&self.pool)
                            .await?
                    }
                    Resource::ChatMessage => {
                        sqlx::query_as(AssertSqlSafe(RESERVE_CHAT.as_str()))
                            .bind(request.user)
                            .bind(cx.now)
                            .bind(i64::from(request.cost))
                            .bind(request.id.as_uuid())
                            .bind(request.expires_at)
                            .bind(day)
                            .bind(cal)
                            .bind(&limits.ids)
                            .bind(&limits.chat)
                            .bind(&limits.tokens)
                            .bind(request.holder)
                            .fetch_optional(&self.pool)
                            .await?
                    }
                },
            };
            if let Some(row) = granted {
                return Ok(ReserveOutcome {
                    refused_by: None,
                    usage: row.into_usage()?,
                });
            }
            // Refused, or no row yet, or lost a race: release what expired, then look.
            let released = self.release_expired(request.user, cx.now).await?;
            let Some(mut usage) = self.read_usage(request.user).await? else {
                self.insert_fresh(&cx, request.user).await?;
                continue;
            };
            usage.roll(cx.now, cx.windows);
            let plan = cx.plans.require(&usage.plan)?;
            match usage.refusal(plan, request.resource, request.cost) {
                Some(kind) if released == 0 => {
                    return Ok(ReserveOutcome {
                        refused_by: Some(kind),
                        usage,
                    });
                }
                refusal => last = refusal.map(|kind| (kind, usage)),
            }
        }
        // Still contended: refuse if the last look said so, else give up without holding.
        match last {
            Some((kind, usage)) => Ok(ReserveOutcome {
                refused_by: Some(kind),
                usage,
            }),
            None => Err(Error::Busy(format!(
                "usage of {} kept changing while reserving",
                request.user
            ))),
        }
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
            cost: i32,
            created_at: DateTime<Utc>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, user_id, holder, resource, cost, created_at FROM quota_reservations \
             WHERE settled_at IS NULL AND holder IS NOT NULL AND state = 'pending' \
             AND created_at < $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(before)
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
                    created_at: r.created_at,
                })
            })
            .collect()
    }

    async fn usage(&self, cx: StoreContext<'_>, user: Uuid) -> Result<Usage> {
        self.release_expired(user, cx.now).await?;
        let mut usage = match self.read_usage(user).await? {
            Some(usage) => usage,
            None => Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows),
        };
        usage.roll(cx.now, cx.windows);
        Ok(usage)
    }

    async fn plan(&self, _cx: StoreContext<'_>, user: Uuid) -> Result<Option<PlanId>> {
        let plan: Option<String> =
            sqlx::query_scalar("SELECT plan FROM usage_quotas WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        Ok(plan.map(PlanId::from))
    }

    async fn set_plan(&self, cx: StoreContext<'_>, user: Uuid, plan: &PlanId) -> Result<()> {
        let fresh = Usage::fresh(user, plan.clone(), cx.now, cx.windows);
        sqlx::query(
            "INSERT INTO usage_quotas (user_id, plan, last_reset_daily, last_reset_monthly, \
             updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET plan = excluded.plan, \
             updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(plan.as_str())
        .bind(fresh.day_start)
        .bind(fresh.month_start)
        .bind(cx.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_billing_period(
        &self,
        cx: StoreContext<'_>,
        user: Uuid,
        period: Option<BillingPeriod>,
    ) -> Result<()> {
        let fresh = Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows);
        sqlx::query(
            "INSERT INTO usage_quotas (user_id, plan, last_reset_daily, last_reset_monthly, \
             period_start, period_end, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id) DO UPDATE SET period_start = excluded.period_start, \
             period_end = excluded.period_end, updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(fresh.plan.as_str())
        .bind(fresh.day_start)
        .bind(fresh.month_start)
        .bind(period.map(|p| p.start))
        .bind(period.map(|p| p.end))
        .bind(cx.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn sweep(&self, cx: StoreContext<'_>) -> Result<SweepReport> {
        let users: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM quota_reservations \
             WHERE settled_at IS NULL AND state = 'pending' AND expires_at <= $1",
        )
        .bind(cx.now)
        .fetch_all(&self.pool)
        .await?;
        let mut report = SweepReport::default();
        for user in users {
            report.released += self.release_expired(user, cx.now).await?;
        }
        let (day, cal) = starts(cx.windows, cx.now);
        report.reset = sqlx::query(AssertSqlSafe(ROLL_ALL.as_str()))
            .bind(cx.now)
            .bind(day)
            .bind(cal)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(report)
    }

    async fn load_plans(&self) -> Result<Vec<Plan>> {
        let rows: Vec<PlanRow> = sqlx::query_as(
            "SELECT id, name, description, price_monthly::int8 AS price_monthly, \
             price_yearly::int8 AS price_yearly, daily_limit::int8 AS daily_limit, \
             monthly_limit::int8 AS monthly_limit, features::text AS features, \
             stripe_price_id_monthly, stripe_price_id_yearly, is_active, monthly_token_limit, \
             burst_requests::int8 AS burst_requests, burst_period_ms, \
             burst_size::int8 AS burst_size, priority::int8 AS priority, \
             daily_chat_limit::int8 AS daily_chat_limit, \
             max_running_jobs::int8 AS max_running_jobs, request_limits::text AS request_limits, \
             storage_limit_bytes FROM pricing_plans ORDER BY position, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(PlanRow::into_plan).collect()
    }

    async fn save_plan(&self, plan: &Plan) -> Result<()> {
        let v = PlanValues::new(plan)?;
        let priority = plan.priority;
        let int = |v: Option<u32>, what: &str| {
            v.map(i32::try_from).transpose().map_err(|_| {
                Error::Config(format!("plan {}: {what} does not fit the table", plan.id))
            })
        };
        let burst_requests = v.burst_requests.map(i32::try_from).transpose();
        let burst_size = v.burst_size.map(i32::try_from).transpose();
        let (Ok(burst_requests), Ok(burst_size)) = (burst_requests, burst_size) else {
            return Err(Error::Config(format!(
                "plan {}: burst does not fit the table",
                plan.id
            )));
        };
        sqlx::query(
            "INSERT INTO pricing_plans (id, name, description, price_monthly, price_yearly, \
             daily_limit, monthly_limit, features, stripe_price_id_monthly, \
             stripe_price_id_yearly, is_active, monthly_token_limit, burst_requests, \
             burst_period_ms, burst_size, priority, daily_chat_limit, max_running_jobs, \
             request_limits, storage_limit_bytes, position) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19::jsonb, $20, (SELECT COALESCE(MAX(position), 0) + 1 FROM pricing_plans)) \
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
        .bind(int(plan.price_monthly, "monthly price")?)
        .bind(int(plan.price_yearly, "yearly price")?)
        .bind(int(plan.daily_generations, "daily limit")?)
        .bind(int(plan.monthly_generations, "monthly limit")?)
        .bind(&v.features)
        .bind(plan.stripe_price_id_monthly.as_deref())
        .bind(plan.stripe_price_id_yearly.as_deref())
        .bind(plan.is_active)
        .bind(v.token_limit)
        .bind(burst_requests)
        .bind(v.burst_period_ms)
        .bind(burst_size)
        .bind(priority)
        .bind(int(plan.daily_chat_messages, "daily chat limit")?)
        .bind(int(plan.max_running_jobs, "running job cap")?)
        .bind(&v.request_limits)
        .bind(storage_limit(plan)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use appforge_testing::TestDatabase;

    /// The plan PostgreSQL caches for a batch of settlements on a busy table that has not been
    /// analyzed yet (a new or freshly emptied one): it finds each reservation by primary key.
    /// With the indexes partial on `state = 'pending'` (the first migration) it read a whole
    /// pending index instead, with the entries of every row settled since the last vacuum, on
    /// every commit.
    #[tokio::test]
    async fn batch_settlements_find_reservations_by_primary_key() {
        let Some(db) = TestDatabase::create_or_skip().await else {
            return;
        };
        let store = PgUsageStore::from_pool(db.pool().await);
        store.migrate().await.unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO quota_reservations (id, user_id, cost, state, day_start, month_start, \
             created_at, expires_at) SELECT gen_random_uuid(), gen_random_uuid(), 1, 'pending', \
             now(), now(), now(), now() + interval '1 hour' FROM generate_series(1, 5000)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        let plan: Vec<String> = sqlx::raw_sql(AssertSqlSafe(format!(
            "SET plan_cache_mode = force_generic_plan; \
             PREPARE commit_many(timestamptz, timestamptz, timestamptz, uuid[], int8[]) AS {}; \
             EXPLAIN EXECUTE commit_many(now(), now(), now(), \
                ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY[1, 2]::int8[]);",
            COMMIT_MANY.as_str()
        )))
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .filter_map(|row| sqlx::Row::try_get(row, 0).ok())
        .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("quota_reservations_pkey"), "{plan}");
        assert!(!plan.contains("quota_reservations_open"), "{plan}");
    }
}
