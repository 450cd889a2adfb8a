//! The batch path: calls that arrive together share one statement.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use uuid::Uuid;

use super::coalesce::{Call, Coalescer, Lease};
use super::statements::*;
use crate::Error;
use crate::reservation::ReservationId;
use crate::store::ReserveRequest;
use crate::store::sql::stored;
use crate::window::Windows;

/// The most calls one batch statement carries.
pub(super) const MAX_BATCH: usize = 256;

/// The two queues of a batching store.
#[derive(Debug)]
pub(super) struct Batches {
    pub(super) reserve: Arc<Coalescer<ReserveAsk, Option<UsageRow>>>,
    pub(super) commit: Arc<Coalescer<CommitAsk, bool>>,
}

impl Batches {
    pub(super) fn new(pool: &PgPool, statements: usize) -> Self {
        Self {
            reserve: Arc::new(Coalescer::new(
                pool.clone(),
                statements,
                MAX_BATCH,
                run_reserves,
            )),
            commit: Arc::new(Coalescer::new(
                pool.clone(),
                statements,
                MAX_BATCH,
                run_commits,
            )),
        }
    }
}

/// One reservation waiting for a batch.
pub(super) struct ReserveAsk {
    pub(super) request: ReserveRequest,
    pub(super) now: DateTime<Utc>,
    pub(super) windows: Windows,
    pub(super) limits: Arc<Limits>,
}

/// One commit waiting for a batch.
pub(super) struct CommitAsk {
    pub(super) id: ReservationId,
    pub(super) tokens: u64,
    pub(super) now: DateTime<Utc>,
    pub(super) windows: Windows,
}

/// Runs a batch of reservations: one statement for each group of calls that share windows
/// and a catalogue (normally all of them), evaluated at the latest of their times.
pub(super) fn run_reserves(
    lease: &mut Lease,
    calls: Vec<Call<ReserveAsk, Option<UsageRow>>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        let mut rest = calls;
        while let Some(first) = rest.first() {
            let (windows, limits) = (first.ask.windows, Arc::clone(&first.ask.limits));
            let (group, others): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|c| c.ask.windows == windows && *c.ask.limits == *limits);
            rest = others;
            reserve_group(lease, group, windows, &limits).await;
        }
    })
}

pub(super) async fn reserve_group(
    lease: &mut Lease,
    calls: Vec<Call<ReserveAsk, Option<UsageRow>>>,
    windows: Windows,
    limits: &Limits,
) {
    let Some(now) = calls.iter().map(|c| c.ask.now).max() else {
        return;
    };
    let conn = match lease.conn().await {
        Ok(conn) => conn,
        Err(e) => return batch_failed(lease, calls, &e, || None, "reservations"),
    };
    let (day, cal) = starts(windows, now);
    let positions: Vec<i32> = (0..).take(calls.len()).collect();
    let users: Vec<Uuid> = calls.iter().map(|c| c.ask.request.user).collect();
    let costs: Vec<i64> = calls
        .iter()
        .map(|c| i64::from(c.ask.request.cost))
        .collect();
    let ids: Vec<Uuid> = calls.iter().map(|c| c.ask.request.id.as_uuid()).collect();
    let expiries: Vec<DateTime<Utc>> = calls.iter().map(|c| c.ask.request.expires_at).collect();
    let rows: std::result::Result<Vec<BatchedRow>, sqlx::Error> =
        sqlx::query_as(AssertSqlSafe(RESERVE_MANY.as_str()))
            .bind(now)
            .bind(day)
            .bind(cal)
            .bind(&positions)
            .bind(&users)
            .bind(&costs)
            .bind(&ids)
            .bind(&expiries)
            .bind(&limits.ids)
            .bind(&limits.daily)
            .bind(&limits.monthly)
            .bind(&limits.tokens)
            .bind(&limits.default_plan)
            .fetch_all(&mut *conn)
            .await;
    match rows {
        Ok(rows) => {
            let mut granted: Vec<Option<UsageRow>> = calls.iter().map(|_| None).collect();
            for row in rows {
                if let Some(slot) = usize::try_from(row.idx)
                    .ok()
                    .and_then(|i| granted.get_mut(i))
                {
                    *slot = Some(row.usage);
                }
            }
            for (call, answer) in calls.into_iter().zip(granted) {
                call.answer(Ok(answer));
            }
        }
        Err(e) => batch_failed(lease, calls, &e, || None, "reservations"),
    }
}

/// Runs a batch of commits: one statement for each group of calls that share windows,
/// evaluated at the latest of their times. A repeated id is left to the single-call path, so
/// that exactly one call settles it and with its own tokens.
pub(super) fn run_commits(
    lease: &mut Lease,
    calls: Vec<Call<CommitAsk, bool>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        let mut seen = std::collections::HashSet::with_capacity(calls.len());
        let mut rest = Vec::with_capacity(calls.len());
        for call in calls {
            if seen.insert(call.ask.id) {
                rest.push(call);
            } else {
                call.answer(Ok(false));
            }
        }
        while let Some(first) = rest.first() {
            let windows = first.ask.windows;
            let (group, others): (Vec<_>, Vec<_>) =
                rest.into_iter().partition(|c| c.ask.windows == windows);
            rest = others;
            commit_group(lease, group, windows).await;
        }
    })
}

pub(super) async fn commit_group(
    lease: &mut Lease,
    calls: Vec<Call<CommitAsk, bool>>,
    windows: Windows,
) {
    let Some(now) = calls.iter().map(|c| c.ask.now).max() else {
        return;
    };
    let conn = match lease.conn().await {
        Ok(conn) => conn,
        Err(e) => return batch_failed(lease, calls, &e, || false, "commits"),
    };
    let (day, cal) = starts(windows, now);
    let ids: Vec<Uuid> = calls.iter().map(|c| c.ask.id.as_uuid()).collect();
    let tokens: Vec<i64> = calls.iter().map(|c| stored(c.ask.tokens)).collect();
    let settled: std::result::Result<Vec<Uuid>, sqlx::Error> =
        sqlx::query_scalar(AssertSqlSafe(COMMIT_MANY.as_str()))
            .bind(now)
            .bind(day)
            .bind(cal)
            .bind(&ids)
            .bind(&tokens)
            .fetch_all(&mut *conn)
            .await;
    match settled {
        Ok(settled) => {
            let settled: std::collections::HashSet<Uuid> = settled.into_iter().collect();
            for call in calls {
                let done = settled.contains(&call.ask.id.as_uuid());
                call.answer(Ok(done));
            }
        }
        Err(e) => batch_failed(lease, calls, &e, || false, "commits"),
    }
}

/// Answers every call of a batch whose statement (or connection) failed, and leaves the
/// connection unkept. A statement PostgreSQL refused (a deadlock with another process's
/// batch, say) applied nothing, so each call is answered `not_done` and takes the single-call
/// path; any other failure (a lost connection) is each call's error.
pub(super) fn batch_failed<T, A>(
    lease: &mut Lease,
    calls: Vec<Call<T, A>>,
    e: &sqlx::Error,
    not_done: fn() -> A,
    kind: &str,
) {
    lease.unfit();
    if let sqlx::Error::Database(refused) = e {
        tracing::debug!(error = %refused, calls = calls.len(), kind, "batch refused; one call at a time");
        for call in calls {
            call.answer(Ok(not_done()));
        }
    } else {
        for call in calls {
            call.answer(Err(shared(e)));
        }
    }
}

/// The error a failed batch statement gives each of its calls (`sqlx::Error` is not `Clone`):
/// the same kind, so that [`Error::is_retryable`] answers as it would for the original.
pub(super) fn shared(e: &sqlx::Error) -> Error {
    Error::from(match e {
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}
