//! The single-call path: connecting, migrating, and one statement per call.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgPool, PgPoolOptions};
use uuid::Uuid;

use super::batch::*;
use super::statements::*;
use super::{DEFAULT_BATCH_STATEMENTS, MAX_ATTEMPTS, PgUsageStore};
use crate::reservation::{ReservationId, ReservationState, Settlement, held_until};
use crate::store::StoreContext;
use crate::store::sql::{MIGRATIONS_TABLE, count, stored};
use crate::usage::{Settle, Step, Usage, answer, live, step};
use crate::{Error, Result};

impl PgUsageStore {
    /// Connects to `url` (`postgres://...`) with a pool of up to 10 connections. Call
    /// [`migrate`](Self::migrate) before use.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        Ok(Self::from_pool(pool))
    }

    /// A store on an existing pool (shared with other crates), batching with
    /// [`DEFAULT_BATCH_STATEMENTS`] statements of each kind in flight.
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            batches: Some(Arc::new(Batches::new(&pool, DEFAULT_BATCH_STATEMENTS))),
            pool,
        }
    }

    /// Sets how many batch statements of each kind (reservations, commits) may run at a time;
    /// `0` turns batching off, so that every call is its own statement.
    #[must_use]
    pub fn batching(mut self, statements: usize) -> Self {
        self.batches = (statements > 0).then(|| Arc::new(Batches::new(&self.pool, statements)));
        self
    }

    /// The pool.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates or updates this crate's tables (migration table `_appforge_quota_migrations`).
    ///
    /// # Errors
    ///
    /// [`Error::Migrate`] when a migration fails.
    pub async fn migrate(&self) -> Result<()> {
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Decides `requests` (generations) in one statement on `conn`: the usage after each one
    /// admitted, `None` for one not admitted (see [`Quota::reserve_held_on`](crate::Quota::reserve_held_on)).
    pub(crate) async fn reserve_held_on(
        &self,
        conn: &mut sqlx::PgConnection,
        cx: StoreContext<'_>,
        requests: &[crate::store::ReserveRequest],
    ) -> Result<Vec<Option<Usage>>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let limits = Limits::of(cx.plans);
        let asked: Vec<_> = requests.iter().map(|r| (*r, cx.now)).collect();
        let rows = reserve_rows_on(conn, &asked, cx.windows, &limits).await?;
        rows.into_iter()
            .map(|row| row.map(UsageRow::into_usage).transpose())
            .collect()
    }

    /// The stored plans of `users` (a user without a row is left out), read on `conn`.
    pub(crate) async fn plans_on(
        &self,
        conn: &mut sqlx::PgConnection,
        users: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, crate::PlanId>> {
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT user_id, plan FROM usage_quotas WHERE user_id = ANY($1)")
                .bind(users)
                .fetch_all(conn)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(user, plan)| (user, crate::PlanId::from(plan)))
            .collect())
    }

    pub(super) async fn read_usage(&self, user: Uuid) -> Result<Option<Usage>> {
        let row: Option<UsageRow> = sqlx::query_as(
            "SELECT user_id, plan, daily_generations, monthly_generations, daily_chat_messages, \
             monthly_tokens_used, total_tokens_used, last_reset_daily, last_reset_monthly, \
             period_start, period_end FROM usage_quotas WHERE user_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        row.map(UsageRow::into_usage).transpose()
    }

    pub(super) async fn release_expired(&self, user: Uuid, now: DateTime<Utc>) -> Result<u64> {
        let released: Option<i64> = sqlx::query_scalar(RELEASE_EXPIRED)
            .bind(user)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(released.map_or(0, |n| count("released", n).unwrap_or(0)))
    }

    /// Stores a new user's row on the default plan, unless one appeared meanwhile.
    pub(super) async fn insert_fresh(&self, cx: &StoreContext<'_>, user: Uuid) -> Result<()> {
        let fresh = Usage::fresh(user, cx.plans.default_plan().id.clone(), cx.now, cx.windows);
        sqlx::query(
            "INSERT INTO usage_quotas (user_id, plan, last_reset_daily, last_reset_monthly, \
             updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING",
        )
        .bind(user)
        .bind(fresh.plan.as_str())
        .bind(fresh.day_start)
        .bind(fresh.month_start)
        .bind(cx.now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn settle(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        how: Settle,
        tokens: u64,
    ) -> Result<Settlement> {
        let (day, cal) = starts(cx.windows, cx.now);
        let mut batched = false;
        if let (Settle::Commit, Some(batches)) = (how, &self.batches) {
            let ask = CommitAsk {
                id,
                tokens,
                now: cx.now,
                windows: cx.windows,
            };
            if batches.commit.submit(ask).await.map_err(unanswered)?? {
                return Ok(Settlement::Settled);
            }
            batched = true;
        }
        for _ in 0..MAX_ATTEMPTS {
            // The fast paths: one statement each (a commit the batch did not settle goes
            // straight to finding out why).
            match how {
                Settle::Commit if std::mem::take(&mut batched) => {}
                Settle::Commit => {
                    let done = sqlx::query(AssertSqlSafe(COMMIT.as_str()))
                        .bind(id.as_uuid())
                        .bind(cx.now)
                        .bind(stored(tokens))
                        .bind(day)
                        .bind(cal)
                        .execute(&self.pool)
                        .await?;
                    if done.rows_affected() > 0 {
                        return Ok(Settlement::Settled);
                    }
                }
                Settle::Refund => {
                    if let Some(state) = self.release(&cx, id, tokens).await? {
                        return Ok(match state {
                            ReservationState::Refunded => Settlement::Settled,
                            _ => Settlement::AlreadyReleased,
                        });
                    }
                }
            }
            // Not pending (or expired): say why, releasing an expired one.
            let row: Option<(String, DateTime<Utc>)> =
                sqlx::query_as("SELECT state, expires_at FROM quota_reservations WHERE id = $1")
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
            let (state, expires_at) = row.ok_or(Error::ReservationNotFound(id))?;
            let state = ReservationState::parse(&state)?;
            match step(state, expires_at <= cx.now, how) {
                Step::Stay(a) => return answer(id, a),
                Step::Move {
                    to: ReservationState::Expired,
                    answer: a,
                    ..
                } => {
                    self.release(&cx, id, 0).await?;
                    return answer(id, a);
                }
                // Pending and live after all: it changed under us; try again.
                Step::Move { .. } => {}
            }
        }
        Err(Error::Busy(format!(
            "reservation {id} kept changing while being settled"
        )))
    }

    /// Releases a pending reservation (refunded before its deadline, with `tokens` added to
    /// the user's usage; expired after); `None` when it was not pending.
    pub(super) async fn release(
        &self,
        cx: &StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
    ) -> Result<Option<ReservationState>> {
        if tokens == 0 {
            let row: Option<(String, Uuid)> = sqlx::query_as(RELEASE)
                .bind(id.as_uuid())
                .bind(cx.now)
                .bind(0_i64)
                .fetch_optional(&self.pool)
                .await?;
            return row.map(|(s, _)| ReservationState::parse(&s)).transpose();
        }
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Uuid)> = sqlx::query_as(RELEASE)
            .bind(id.as_uuid())
            .bind(cx.now)
            .bind(stored(tokens))
            .fetch_optional(&mut *tx)
            .await?;
        let Some((state, user)) = row else {
            return Ok(None);
        };
        let state = ReservationState::parse(&state)?;
        if state == ReservationState::Refunded {
            self.add_tokens(&mut tx, cx, user, tokens).await?;
        }
        tx.commit().await?;
        Ok(Some(state))
    }

    /// Adds `tokens` to the user's usage inside `tx`.
    pub(super) async fn add_tokens(
        &self,
        tx: &mut sqlx::PgConnection,
        cx: &StoreContext<'_>,
        user: Uuid,
        tokens: u64,
    ) -> Result<()> {
        let (day, cal) = starts(cx.windows, cx.now);
        sqlx::query(AssertSqlSafe(ADD_TOKENS.as_str()))
            .bind(user)
            .bind(cx.now)
            .bind(stored(tokens))
            .bind(day)
            .bind(cal)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Records tokens on, or attaches a holder to, a live pending reservation.
    pub(super) async fn touch(
        &self,
        cx: StoreContext<'_>,
        id: ReservationId,
        tokens: u64,
        holder: Option<Uuid>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, DateTime<Utc>, Uuid)> = sqlx::query_as(
            "SELECT state, expires_at, user_id FROM quota_reservations WHERE id = $1 FOR UPDATE",
        )
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        let (state, expires_at, user) = row.ok_or(Error::ReservationNotFound(id))?;
        let state = ReservationState::parse(&state)?;
        if let Err(state) = live(state, expires_at <= cx.now) {
            drop(tx);
            if state == ReservationState::Expired {
                self.release(&cx, id, 0).await?;
            }
            return Err(Error::AlreadySettled { id, state });
        }
        match holder {
            Some(holder) => {
                sqlx::query(
                    "UPDATE quota_reservations SET holder = $2, expires_at = $3 WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(holder)
                .bind(held_until())
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE quota_reservations SET tokens = COALESCE(tokens, 0) + $2 WHERE id = $1",
                )
                .bind(id.as_uuid())
                .bind(stored(tokens))
                .execute(&mut *tx)
                .await?;
                self.add_tokens(&mut tx, &cx, user, tokens).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
