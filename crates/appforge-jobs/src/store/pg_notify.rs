//! `LISTEN/NOTIFY` on PostgreSQL: wake-ups for idle workers and job events across processes.
//!
//! Two channels: `appforge_jobs_wake` (empty payload, so PostgreSQL coalesces repeats within a
//! transaction) and `appforge_job_events` (a payload of lines: the publishing store's origin,
//! then one JSON event per line, kept under the 8000-byte limit by chunking).

use std::collections::VecDeque;
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

fn chunks(origin: Origin, events: &[JobEvent]) -> Vec<String> {
    let header = origin.0.simple().to_string();
    let mut out = Vec::new();
    let mut current = header.clone();
    for event in events.iter().filter(|e| crosses_processes(e)) {
        let Ok(line) = serde_json::to_string(event) else {
            continue;
        };
        if header.len() + 1 + line.len() > MAX_PAYLOAD {
            // Too large to carry (a very long error): subscribers catch up by polling.
            continue;
        }
        if current.len() + 1 + line.len() > MAX_PAYLOAD {
            out.push(std::mem::replace(&mut current, header.clone()));
        }
        current.push('\n');
        current.push_str(&line);
    }
    if current.len() > header.len() {
        out.push(current);
    }
    out
}

/// Publishes events to other processes, in one statement.
pub(crate) async fn publish(pool: &PgPool, origin: Origin, events: &[JobEvent]) -> Result<()> {
    let payloads = chunks(origin, events);
    if payloads.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify('appforge_job_events', p) FROM unnest($1::text[]) AS p")
        .bind(payloads)
        .execute(pool)
        .await?;
    Ok(())
}

fn parse(origin: Origin, payload: &str) -> Option<Vec<JobEvent>> {
    let mut lines = payload.split('\n');
    let from = Uuid::parse_str(lines.next()?).ok()?;
    if from == origin.0 {
        return None;
    }
    Some(
        lines
            .filter_map(|line| serde_json::from_str::<JobEvent>(line).ok())
            .collect(),
    )
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
                if let Some(events) = parse(st.origin, n.payload()) {
                    let wake = events.iter().any(|e| e.status == crate::JobStatus::Pending);
                    st.backlog.push_back(Notification::Events(events));
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
            at: chrono::Utc::now(),
            status: JobStatus::Failed,
            attempt: 1,
            kind: JobEventKind::Failed {
                error: error.into(),
            },
        }
    }

    #[test]
    fn chunks_stay_under_the_limit_and_round_trip() {
        let origin = Origin::new();
        let events: Vec<JobEvent> = (0..200).map(|_| event("boom")).collect();
        let payloads = chunks(origin, &events);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let other = Origin::new();
        let back: Vec<JobEvent> = payloads
            .iter()
            .flat_map(|p| parse(other, p).unwrap())
            .collect();
        assert_eq!(back, events);
        // Its own origin is skipped.
        assert!(parse(origin, &payloads[0]).is_none());
    }

    #[test]
    fn oversized_events_are_left_to_polling() {
        let payloads = chunks(Origin::new(), &[event(&"x".repeat(9000))]);
        assert!(payloads.is_empty());
    }
}
