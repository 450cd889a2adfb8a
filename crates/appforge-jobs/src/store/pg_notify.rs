//! `LISTEN/NOTIFY` on PostgreSQL: wake-ups for idle workers and job events across processes.
//!
//! Two channels: `appforge_jobs_wake` (empty payload, so PostgreSQL coalesces repeats within a
//! transaction) and `appforge_job_events` (one event per notification: the publishing store's
//! origin, a newline, the event as JSON), sent only for watched jobs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Notification, Notifications};
use crate::{JobEvent, JobEventKind, Result};

const WAKE: &str = "appforge_jobs_wake";
const EVENTS: &str = "appforge_job_events";
/// Below PostgreSQL's 8000-byte payload limit.
const MAX_PAYLOAD: usize = 7800;

/// Identifies one store instance, so that its own listener skips what it published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Origin(Uuid);

impl Origin {
    pub(crate) fn new() -> Self {
        Self(Uuid::new_v4())
    }
}

/// Wakes idle workers everywhere (inside a transaction: at its commit).
pub(crate) async fn wake_on(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_notify('appforge_jobs_wake', '')")
        .execute(conn)
        .await?;
    Ok(())
}

fn crosses_processes(event: &JobEvent) -> bool {
    // Enqueues travel as wake-ups; snapshots are never published.
    !matches!(
        event.kind,
        JobEventKind::Enqueued | JobEventKind::Snapshot { .. }
    )
}

/// One payload per event: the origin, a newline, the event as JSON. `None` when too large to
/// carry (a very long error): subscribers then catch up by polling.
fn payload(origin: Origin, event: &JobEvent) -> Option<String> {
    let line = serde_json::to_string(event).ok()?;
    let payload = format!("{}\n{line}", origin.0.simple());
    (payload.len() <= MAX_PAYLOAD).then_some(payload)
}

/// Publishes events to other processes, in one statement: only events of watched jobs (a
/// subscriber somewhere), and cancellation requests (for the worker running the job).
/// `known` says, for jobs whose watch state the writing statement already returned, whether
/// they are watched; other jobs are looked up.
pub(crate) async fn publish(
    pool: &PgPool,
    origin: Origin,
    events: &[JobEvent],
    known: &HashMap<Uuid, bool>,
) -> Result<()> {
    let events: Vec<&JobEvent> = events.iter().filter(|e| crosses_processes(e)).collect();
    if events.is_empty() {
        return Ok(());
    }
    let always = |e: &JobEvent| matches!(e.kind, JobEventKind::CancelRequested);
    // Ask which jobs are watched first: the common case (nobody watching) sends ids only.
    let unknown: Vec<Uuid> = events
        .iter()
        .filter(|e| !always(e) && !known.contains_key(&e.job_id.as_uuid()))
        .map(|e| e.job_id.as_uuid())
        .collect();
    let mut watched: HashSet<Uuid> = known
        .iter()
        .filter(|(_, w)| **w)
        .map(|(id, _)| *id)
        .collect();
    if !unknown.is_empty() {
        let ids = unknown;
        let found: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT job_id FROM generation_job_watches \
             WHERE job_id = ANY($1) AND expires_at > now()",
        )
        .bind(ids)
        .fetch_all(pool)
        .await?;
        watched.extend::<Vec<Uuid>>(found);
    }
    let payloads: Vec<String> = events
        .iter()
        .filter(|e| always(e) || watched.contains(&e.job_id.as_uuid()))
        .filter_map(|e| payload(origin, e))
        .collect();
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify('appforge_job_events', p) FROM unnest($1::text[]) AS p")
        .bind(payloads)
        .execute(pool)
        .await?;
    Ok(())
}

/// Marks a job as watched by `origin` for an hour (renewed by each subscription).
pub(crate) async fn watch(pool: &PgPool, origin: Origin, job: Uuid) -> Result<()> {
    sqlx::query(
        "INSERT INTO generation_job_watches (job_id, watcher, expires_at) \
         VALUES ($1, $2, now() + interval '1 hour') \
         ON CONFLICT (job_id, watcher) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(job)
    .bind(origin.0)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stops watching a job; also sweeps expired watches.
pub(crate) async fn unwatch(pool: &PgPool, origin: Origin, job: Uuid) -> Result<()> {
    sqlx::query(
        "DELETE FROM generation_job_watches WHERE (job_id = $1 AND watcher = $2) \
         OR expires_at < now()",
    )
    .bind(job)
    .bind(origin.0)
    .execute(pool)
    .await?;
    Ok(())
}

fn parse(origin: Origin, payload: &str) -> Option<JobEvent> {
    let (from, line) = payload.split_once('\n')?;
    if Uuid::parse_str(from).ok()? == origin.0 {
        return None;
    }
    serde_json::from_str(line).ok()
}

async fn connect(pool: &PgPool) -> Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([WAKE, EVENTS]).await?;
    Ok(listener)
}

struct State {
    pool: PgPool,
    origin: Origin,
    listener: Option<PgListener>,
    backlog: VecDeque<Notification>,
}

/// The notifications other processes publish; reconnects after losing its connection (and
/// says so with [`Notification::Reconnected`]); ends when the pool is closed.
pub(crate) async fn listen(pool: PgPool, origin: Origin) -> Result<Notifications> {
    let listener = connect(&pool).await?;
    let state = State {
        pool,
        origin,
        listener: Some(listener),
        backlog: VecDeque::new(),
    };
    Ok(Box::pin(futures::stream::unfold(state, next)))
}

async fn next(mut st: State) -> Option<(Notification, State)> {
    loop {
        if let Some(note) = st.backlog.pop_front() {
            return Some((note, st));
        }
        if st.pool.is_closed() {
            return None;
        }
        let Some(listener) = st.listener.as_mut() else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            match connect(&st.pool).await {
                Ok(listener) => {
                    st.listener = Some(listener);
                    return Some((Notification::Reconnected, st));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot reconnect the job listener yet");
                    continue;
                }
            }
        };
        match listener.try_recv().await {
            Ok(Some(n)) if n.channel() == WAKE => return Some((Notification::Wake, st)),
            Ok(Some(n)) => {
                if let Some(event) = parse(st.origin, n.payload()) {
                    let wake = event.status == crate::JobStatus::Pending;
                    st.backlog.push_back(Notification::Events(vec![event]));
                    if wake {
                        st.backlog.push_back(Notification::Wake);
                    }
                }
            }
            // The connection dropped; the listener reconnects on the next call.
            Ok(None) => return Some((Notification::Reconnected, st)),
            Err(sqlx::Error::PoolClosed) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "job listener failed; reconnecting");
                st.listener = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobId, JobStatus};

    fn event(error: &str) -> JobEvent {
        let job_id = JobId::new();
        JobEvent {
            job_id,
            user_id: Uuid::new_v4(),
            org_id: Some(Uuid::new_v4()),
            at: chrono::Utc::now(),
            status: JobStatus::Failed,
            attempt: 1,
            kind: JobEventKind::Failed {
                error: error.into(),
            },
        }
    }

    #[test]
    fn payloads_round_trip_and_skip_their_origin() {
        let origin = Origin::new();
        let e = event("boom");
        let p = payload(origin, &e).unwrap();
        assert_eq!(parse(Origin::new(), &p), Some(e));
        assert_eq!(parse(origin, &p), None);
    }

    #[test]
    fn oversized_events_are_left_to_polling() {
        assert!(payload(Origin::new(), &event(&"x".repeat(9000))).is_none());
    }
}
