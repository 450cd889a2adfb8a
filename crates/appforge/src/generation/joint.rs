//! Submitting when the quota and the jobs share one database: a generation's reservation (held
//! by its job from the start) and its job commit in one transaction, so that there is never a
//! reservation without its job nor a job without its reservation. On PostgreSQL, submissions
//! that arrive together share that transaction (one commit for many requests).
//!
//! A submission this path does not admit (a limit reached, a burst limit, a race with another
//! transaction, a statement PostgreSQL refused) goes back to the caller untouched, which takes
//! the path of separate steps: that path decides, and says why when it refuses.

use appforge_jobs::{JobId, NewJob, Priority};
use appforge_quota::Reservation;
use uuid::Uuid;

use super::submit::Submission;

#[cfg(feature = "postgres")]
pub(super) mod postgres {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use appforge_core::db::coalesce::{Call, Coalescer, Lease};
    use appforge_jobs::{JobId, JobQueue, JobStore, NewJob};
    use appforge_quota::{Quota, Reservation, UsageStore};
    use sqlx::Connection;
    use sqlx::postgres::PgConnectOptions;
    use uuid::Uuid;

    use super::new_job;
    use crate::generation::submit::{Submission, SubmitError, Submitted};

    /// The most submissions one transaction carries.
    const MAX_BATCH: usize = 256;

    /// The joint transactions that may run at a time. Two let one batch fill while the other
    /// commits (1,358 and 992 submissions/s over HTTP, where one gave 1,097 and 890); more
    /// take row locks in the same usage rows at once, and a deadlock between batches sends
    /// both to the separate steps.
    const IN_FLIGHT: usize = 2;

    /// One submission waiting for a transaction.
    pub(in crate::generation) struct Ask {
        user: Uuid,
        submission: Submission,
    }

    /// What became of a submission.
    pub(in crate::generation) enum Joined {
        /// Reserved and enqueued, committed together.
        Submitted(Submitted),
        /// Not admitted here, nothing written: the caller takes the other path.
        NotAdmitted(Submission),
        /// The commit failed: whether it took effect is unknown, so the submission is not tried
        /// again (a committed job settles its reservation when it ends, like any other).
        Failed(SubmitError),
    }

    /// What every transaction needs: the quota and the queue.
    pub(in crate::generation) struct Stores<J, U> {
        quota: Quota<U>,
        queue: JobQueue<J>,
    }

    /// The queue of submissions of a service whose quota and jobs share a PostgreSQL database.
    pub(in crate::generation) type Joint<J, U> = Coalescer<Stores<J, U>, Ask, Joined>;

    /// The joint path for `quota` and `queue`, when both are on PostgreSQL and on the same
    /// database (the same host, port and database name); `None` otherwise.
    pub(in crate::generation) fn joint<J: JobStore, U: UsageStore + 'static>(
        quota: &Quota<U>,
        queue: &JobQueue<J>,
    ) -> Option<Arc<Joint<J, U>>> {
        let (usage, jobs) = (quota.postgres_pool()?, queue.postgres_pool()?);
        if !same_database(&usage.connect_options(), &jobs.connect_options()) {
            return None;
        }
        let stores = Stores {
            quota: quota.clone(),
            queue: queue.clone(),
        };
        Some(Arc::new(Coalescer::new(
            stores,
            jobs.clone(),
            IN_FLIGHT,
            MAX_BATCH,
            run::<J, U>,
        )))
    }

    fn same_database(a: &PgConnectOptions, b: &PgConnectOptions) -> bool {
        a.get_host() == b.get_host()
            && a.get_port() == b.get_port()
            && a.get_database() == b.get_database()
    }

    /// Submits `submission` by `user` through `joint`: the submission back when this path did
    /// not admit it.
    pub(in crate::generation) async fn submit<J: JobStore, U: UsageStore + 'static>(
        joint: &Arc<Joint<J, U>>,
        user: Uuid,
        submission: Submission,
    ) -> Result<Result<Submitted, Submission>, SubmitError> {
        match joint.submit(Ask { user, submission }).await {
            Ok(Joined::Submitted(submitted)) => Ok(Ok(submitted)),
            Ok(Joined::NotAdmitted(submission)) => Ok(Err(submission)),
            Ok(Joined::Failed(error)) => Err(error),
            // The batch stopped without answering (its runtime shutting down): whether its
            // transaction committed is unknown, as for a failed commit.
            Err(stopped) => Err(SubmitError::Quota(appforge_quota::Error::Busy(
                stopped.to_string(),
            ))),
        }
    }

    /// Runs one transaction for `calls`: reserves for all of them in one statement, enqueues the
    /// admitted ones' jobs in one more, commits.
    fn run<'l, J: JobStore, U: UsageStore + 'static>(
        stores: &'l Stores<J, U>,
        lease: &'l mut Lease,
        calls: Vec<Call<Ask, Joined>>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'l>> {
        Box::pin(async move {
            let jobs: Vec<JobId> = calls.iter().map(|_| JobId::new()).collect();
            let outcome = match lease.conn().await {
                Ok(conn) => transact(stores, conn, &calls, &jobs).await,
                Err(error) => {
                    tracing::debug!(%error, "no connection for a joint submission; separate steps");
                    Err(Failure::Before)
                }
            };
            let reserved = match outcome {
                Ok(reserved) => reserved,
                Err(Failure::Before) => {
                    lease.unfit();
                    for call in calls {
                        call.answer_with(|ask| Joined::NotAdmitted(ask.submission));
                    }
                    return;
                }
                Err(Failure::Commit(reserved, error)) => {
                    lease.unfit();
                    let error = appforge_quota::Error::from(error);
                    for (call, reservation) in calls.into_iter().zip(reserved) {
                        call.answer_with(|ask| match reservation {
                            Some(_) => Joined::Failed(SubmitError::Quota(shared(&error))),
                            None => Joined::NotAdmitted(ask.submission),
                        });
                    }
                    return;
                }
            };
            for ((call, reservation), job) in calls.into_iter().zip(reserved).zip(jobs) {
                call.answer_with(|ask| match reservation {
                    Some(reservation) => Joined::Submitted(Submitted {
                        job,
                        reservation: reservation.id,
                        plan: reservation.plan,
                    }),
                    None => Joined::NotAdmitted(ask.submission),
                });
            }
        })
    }

    /// Why a transaction did not commit.
    enum Failure {
        /// Before its commit: nothing was written.
        Before,
        /// At its commit (with what it had reserved): whether it took effect is unknown.
        Commit(Vec<Option<Reservation>>, sqlx::Error),
    }

    /// The transaction of [`run`] on `conn`: the reservations it committed, one per call.
    async fn transact<J: JobStore, U: UsageStore + 'static>(
        stores: &Stores<J, U>,
        conn: &mut sqlx::PgConnection,
        calls: &[Call<Ask, Joined>],
        jobs: &[JobId],
    ) -> Result<Vec<Option<Reservation>>, Failure> {
        let asks: Vec<(Uuid, Uuid)> = calls
            .iter()
            .zip(jobs)
            .map(|(call, job)| (call.ask.submission.owner(call.ask.user).id(), job.as_uuid()))
            .collect();
        let mut tx = conn.begin().await.map_err(|error| {
            tracing::debug!(%error, "joint submission not begun; separate steps");
            Failure::Before
        })?;
        let reserved = stores
            .quota
            .reserve_held_on(&mut tx, &asks)
            .await
            .map_err(|error| {
                tracing::debug!(%error, "joint reservations refused; separate steps");
                Failure::Before
            })?;
        let new_jobs: Vec<NewJob> = calls
            .iter()
            .zip(&reserved)
            .zip(jobs)
            .filter_map(|((call, reservation), job)| {
                reservation.as_ref().map(|reservation| {
                    new_job(call.ask.user, &call.ask.submission, reservation, *job)
                })
            })
            .collect();
        if !new_jobs.is_empty() {
            stores
                .queue
                .enqueue_in(&mut tx, new_jobs)
                .await
                .map_err(|error| {
                    tracing::debug!(%error, "joint jobs refused; separate steps");
                    Failure::Before
                })?;
        }
        match tx.commit().await {
            Ok(()) => Ok(reserved),
            Err(error) => Err(Failure::Commit(reserved, error)),
        }
    }

    /// Each caller's copy of a commit's error (`appforge_quota::Error` is not `Clone`).
    fn shared(error: &appforge_quota::Error) -> appforge_quota::Error {
        appforge_quota::Error::Busy(format!(
            "the generation's transaction did not commit: {error}"
        ))
    }
}

/// The job of an admitted submission, named `id` (its reservation's holder).
fn new_job(user: Uuid, submission: &Submission, reservation: &Reservation, id: JobId) -> NewJob {
    let submission = submission.clone();
    let kind = submission.kind();
    let org = submission.org();
    let payload = submission.payload(reservation.id, &reservation.plan, None);
    let mut job = NewJob::new(kind, user, payload)
        .priority(Priority(reservation.priority))
        .with_id(id);
    if let Some(org) = org {
        job = job.in_org(org);
    }
    job
}

/// The SQLite form: the quota and the jobs in one SQLite file. One immediate transaction per
/// submission (SQLite has one writer at a time; what it saves is the separate commits of the
/// reservation, the job and the hold).
#[cfg(feature = "sqlite")]
pub(super) mod sqlite {
    use appforge_jobs::{JobId, JobQueue, JobStore};
    use appforge_quota::{Quota, UsageStore};
    use uuid::Uuid;

    use super::new_job;
    use crate::generation::submit::{Submission, SubmitError, Submitted};

    /// The pool both share, when the quota and the queue are on the same SQLite file (not an
    /// in-memory database, which is one per pool).
    pub(in crate::generation) fn shared<J: JobStore, U: UsageStore + 'static>(
        quota: &Quota<U>,
        queue: &JobQueue<J>,
    ) -> Option<sqlx::SqlitePool> {
        let (usage, jobs) = (quota.sqlite_pool()?, queue.sqlite_pool()?);
        let (a, b) = (usage.connect_options(), jobs.connect_options());
        let file = a.get_filename();
        (file == b.get_filename() && file.to_str() != Some(":memory:")).then(|| jobs.clone())
    }

    /// Submits in one immediate transaction on `pool`: the submission back when it was not
    /// admitted there (nothing written).
    pub(in crate::generation) async fn submit<J: JobStore, U: UsageStore + 'static>(
        pool: &sqlx::SqlitePool,
        quota: &Quota<U>,
        queue: &JobQueue<J>,
        user: Uuid,
        submission: Submission,
    ) -> Result<Result<Submitted, Submission>, SubmitError> {
        match transact(pool, quota, queue, user, &submission).await {
            Outcome::Submitted(submitted) => {
                queue.wake_workers();
                Ok(Ok(submitted))
            }
            Outcome::NotWritten => Ok(Err(submission)),
            Outcome::CommitFailed(error) => Err(SubmitError::Quota(error.into())),
        }
    }

    /// What became of a transaction.
    enum Outcome {
        Submitted(Submitted),
        /// Not admitted, or failed before its commit: nothing was written.
        NotWritten,
        /// The commit failed.
        CommitFailed(sqlx::Error),
    }

    async fn transact<J: JobStore, U: UsageStore + 'static>(
        pool: &sqlx::SqlitePool,
        quota: &Quota<U>,
        queue: &JobQueue<J>,
        user: Uuid,
        submission: &Submission,
    ) -> Outcome {
        let job = JobId::new();
        let subject = submission.owner(user).id();
        let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(error) => {
                tracing::debug!(%error, "joint submission not begun; separate steps");
                return Outcome::NotWritten;
            }
        };
        let reservation = match quota
            .reserve_held_on_sqlite(&mut tx, subject, job.as_uuid())
            .await
        {
            Ok(Some(reservation)) => reservation,
            Ok(None) => return Outcome::NotWritten,
            Err(error) => {
                tracing::debug!(%error, "joint reservation refused; separate steps");
                return Outcome::NotWritten;
            }
        };
        let new = vec![new_job(user, submission, &reservation, job)];
        if let Err(error) = queue.enqueue_in_sqlite(&mut tx, new).await {
            tracing::debug!(%error, "joint job refused; separate steps");
            return Outcome::NotWritten;
        }
        match tx.commit().await {
            Ok(()) => Outcome::Submitted(Submitted {
                job,
                reservation: reservation.id,
                plan: reservation.plan,
            }),
            Err(error) => Outcome::CommitFailed(error),
        }
    }
}
