//! The batch path: calls that arrive together share one statement.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use appforge_core::db::coalesce::{Call, Coalescer, Lease};
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, PgConnection};
use uuid::Uuid;

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
    pub(super) reserve: Arc<Coalescer<(), ReserveAsk, Answer<Option<UsageRow>>>>,
    pub(super) commit: Arc<Coalescer<(), CommitAsk, Answer<bool>>>,
}

impl Batches {
    pub(super) fn new(pool: &PgPool, statements: usize) -> Self {
        Self {
            reserve: Arc::new(Coalescer::new(
                (),
                pool.clone(),
                statements,
                MAX_BATCH,
                run_reserves,
            )),
            commit: Arc::new(Coalescer::new(
                (),
                pool.clone(),
                statements,
                MAX_BATCH,
                run_commits,
            )),
        }
    }
}

/// The error of a call whose batch stopped before answering it.
pub(super) fn unanswered(e: appforge_core::db::coalesce::Unanswered) -> Error {
    Error::Busy(e.to_string())
}

/// A batched call's answer.
pub(super) type Answer<A> = crate::Result<A>;

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
pub(super) fn run_reserves<'l>(
    _: &'l (),
    lease: &'l mut Lease,
    calls: Vec<Call<ReserveAsk, Answer<Option<UsageRow>>>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'l>> {
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
    calls: Vec<Call<ReserveAsk, Answer<Option<UsageRow>>>>,
    windows: Windows,
    limits: &Limits,
) {
    let conn = match lease.conn().await {
        Ok(conn) => conn,
        Err(e) => return batch_failed(lease, calls, &e, || None, "reservations"),
    };
    let requests: Vec<(ReserveRequest, DateTime<Utc>)> =
        calls.iter().map(|c| (c.ask.request, c.ask.now)).collect();
    match reserve_rows_on(conn, &requests, windows, limits).await {
        Ok(granted) => {
            for (call, answer) in calls.into_iter().zip(granted) {
                call.answer(Ok(answer));
            }
        }
        Err(e) => batch_failed(lease, calls, &e, || None, "reservations"),
    }
}

/// Runs [`RESERVE_MANY`] for `requests` (each with the time it was asked at) on `conn`,
/// evaluated at the latest of their times: for each request, the usage after it when it was
/// admitted, `None` when it was not (a limit reached, a new user's row inserted meanwhile by
/// another transaction), to be retried on the single-call path.
pub(super) async fn reserve_rows_on(
    conn: &mut PgConnection,
    requests: &[(ReserveRequest, DateTime<Utc>)],
    windows: Windows,
    limits: &Limits,
) -> std::result::Result<Vec<Option<UsageRow>>, sqlx::Error> {
    let Some(now) = requests.iter().map(|(_, at)| *at).max() else {
        return Ok(Vec::new());
    };
    let (day, cal) = starts(windows, now);
    let positions: Vec<i32> = (0..).take(requests.len()).collect();
    let users: Vec<Uuid> = requests.iter().map(|(r, _)| r.user).collect();
    let costs: Vec<i64> = requests.iter().map(|(r, _)| i64::from(r.cost)).collect();
    let ids: Vec<Uuid> = requests.iter().map(|(r, _)| r.id.as_uuid()).collect();
    let expiries: Vec<DateTime<Utc>> = requests.iter().map(|(r, _)| r.expires_at).collect();
    let holders: Vec<Option<Uuid>> = requests.iter().map(|(r, _)| r.holder).collect();
    let rows: Vec<BatchedRow> = sqlx::query_as(AssertSqlSafe(RESERVE_MANY.as_str()))
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
        .bind(&holders)
        .fetch_all(conn)
        .await?;
    let mut granted: Vec<Option<UsageRow>> = requests.iter().map(|_| None).collect();
    for row in rows {
        if let Some(slot) = usize::try_from(row.idx)
            .ok()
            .and_then(|i| granted.get_mut(i))
        {
            *slot = Some(row.usage);
        }
    }
    Ok(granted)
}

/// Runs a batch of commits: one statement for each group of calls that share windows,
/// evaluated at the latest of their times. A repeated id is left to the single-call path, so
/// that exactly one call settles it and with its own tokens.
pub(super) fn run_commits<'l>(
    _: &'l (),
    lease: &'l mut Lease,
    calls: Vec<Call<CommitAsk, Answer<bool>>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'l>> {
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
    calls: Vec<Call<CommitAsk, Answer<bool>>>,
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
    calls: Vec<Call<T, Answer<A>>>,
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
