//! Coalescing concurrent calls into one statement (or one transaction) on PostgreSQL.
//!
//! Behind the `postgres` feature. The quota store batches its reservations and commits with
//! it, and `appforge`'s generation service commits a batch of reservations and their jobs in
//! one transaction.
//!
//! Written here rather than taken from a crate: what is needed is small (a queue, a bound on
//! statements in flight, one reply per call), and a lone call must not wait on a timer.
//!
//! There is no timer. A call joins the queue and, if fewer than `slots` batches are running,
//! starts one. The new batch yields to the scheduler until a yield brings no new call, then
//! takes everything queued: callers woken together (the answers of the previous batch) join it
//! instead of one of them going alone and the rest waiting a whole statement behind it. While
//! batches run, calls queue up, and the next batch to start takes them all: a lone call runs
//! after two yields, and under load each statement carries the calls that arrived while the
//! previous ones ran. Batches run on spawned tasks, so a caller that gives up (its future
//! dropped) does not cut short a statement that carries other calls.
//!
//! **Connections.** Batches run on connections of their own, opened with the pool's connect
//! options and kept between batches (at most one per slot): a batch is then one round trip (a
//! pool checkout first pings the connection), on a server process that has already planned the
//! statement. A connection idle for a while is pinged before use; one whose statement failed
//! is dropped. When one cannot be opened, the batch runs on a pool connection.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres};
use tokio::sync::{Semaphore, oneshot};

/// One queued call: what it asks and where its answer goes.
pub struct Call<T, A> {
    /// What the caller asked.
    pub ask: T,
    reply: oneshot::Sender<A>,
}

impl<T, A> Call<T, A> {
    /// Answers the call (a caller that went away is not an error).
    pub fn answer(self, answer: A) {
        let _ = self.reply.send(answer);
    }

    /// Answers the call with what `answer` makes of its ask (handing the ask back, say).
    pub fn answer_with(self, answer: impl FnOnce(T) -> A) {
        let _ = self.reply.send(answer(self.ask));
    }
}

impl<T: std::fmt::Debug, A> std::fmt::Debug for Call<T, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("ask", &self.ask)
            .finish_non_exhaustive()
    }
}

/// The batch carrying a call stopped before answering it (its runtime shut down, or it
/// panicked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unanswered;

impl std::fmt::Display for Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the batch carrying this call stopped before answering")
    }
}

impl std::error::Error for Unanswered {}

/// The queued calls, and whether a batch has been started that has not yet taken its calls.
struct Queue<T, A> {
    calls: Vec<Call<T, A>>,
    starting: bool,
}

/// Runs one batch, answering every call in it, on the connection the lease gives; `C` is
/// the coalescer's context (the store or service that owns it), shared by every batch.
pub type RunBatch<C, T, A> = for<'l> fn(
    &'l C,
    &'l mut Lease,
    Vec<Call<T, A>>,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'l>>;

/// How long a kept connection may sit idle before it is pinged ahead of a batch.
const IDLE_CHECK: Duration = Duration::from_secs(10);

/// Where batches get connections: their own, kept between batches, or the pool's.
#[derive(Debug)]
struct Connections {
    pool: PgPool,
    /// Connections kept between batches, with when each was last used.
    idle: Mutex<Vec<(PgConnection, Instant)>>,
}

impl Connections {
    /// A kept connection (pinged first when it has been idle a while), else a new one, else a
    /// pool connection.
    async fn open(&self) -> std::result::Result<Conn, sqlx::Error> {
        loop {
            let Some((mut conn, used)) = self.idle.lock().pop() else {
                break;
            };
            if used.elapsed() < IDLE_CHECK || conn.ping().await.is_ok() {
                return Ok(Conn::Own(conn));
            }
        }
        let options = self.pool.connect_options();
        match PgConnection::connect_with(&options).await {
            Ok(conn) => Ok(Conn::Own(conn)),
            Err(e) => {
                tracing::debug!(error = %e, "no connection of its own for a batch; using the pool");
                Ok(Conn::Pooled(self.pool.acquire().await?))
            }
        }
    }
}

/// A batch's connection, opened when the batch first asks for it, kept for the next batch
/// when the batch has run to its end and found it fit. (A batch cut short, its task dropped
/// by a runtime shutting down, may leave a statement half-read: that connection is closed.)
pub struct Lease {
    from: Arc<Connections>,
    conn: Option<Conn>,
    fit: bool,
    ran: bool,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("connected", &self.conn.is_some())
            .field("fit", &self.fit)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// The batch's connection: one the coalescer kept from an earlier batch (pinged first
    /// when it sat idle a while), else a new one, else one from the pool.
    ///
    /// # Errors
    ///
    /// When no connection can be opened, nor one taken from the pool.
    pub async fn conn(&mut self) -> std::result::Result<&mut PgConnection, sqlx::Error> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.from.open().await?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Marks the connection unfit for another batch, after a statement on it failed: the
    /// failure may be the server closing it (a `FATAL` error arrives as a database error), and
    /// a fresh connection is cheap next to a batch of calls failing on a dead one.
    pub fn unfit(&mut self) {
        self.fit = false;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let (Some(Conn::Own(conn)), true) = (self.conn.take(), self.fit && self.ran) {
            self.from.idle.lock().push((conn, Instant::now()));
        }
    }
}

/// A connection a batch runs on.
enum Conn {
    /// One of the coalescer's own, kept between batches.
    Own(PgConnection),
    /// A pool connection, when an own one could not be opened.
    Pooled(PoolConnection<Postgres>),
}

impl Deref for Conn {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        match self {
            Self::Own(c) => c,
            Self::Pooled(c) => c,
        }
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        match self {
            Self::Own(c) => c,
            Self::Pooled(c) => c,
        }
    }
}

/// A queue of calls of one kind, run as batches of at most `max` calls, at most `slots` at a
/// time, each batch by `run` with the context `C`.
pub struct Coalescer<C, T, A> {
    context: C,
    connections: Arc<Connections>,
    queue: Mutex<Queue<T, A>>,
    slots: Arc<Semaphore>,
    max: usize,
    run: RunBatch<C, T, A>,
}

impl<C: Send + Sync + 'static, T: Send + 'static, A: Send + 'static> Coalescer<C, T, A> {
    /// A queue whose batches run `run` with `context`, on connections opened with `pool`'s
    /// connect options (or taken from `pool`), at most `slots` batches at a time, each with at
    /// most `max` calls.
    pub fn new(context: C, pool: PgPool, slots: usize, max: usize, run: RunBatch<C, T, A>) -> Self {
        Self {
            context,
            connections: Arc::new(Connections {
                pool,
                idle: Mutex::new(Vec::new()),
            }),
            queue: Mutex::new(Queue {
                calls: Vec::new(),
                starting: false,
            }),
            slots: Arc::new(Semaphore::new(slots.max(1))),
            max: max.max(1),
            run,
        }
    }

    /// Queues `ask` and waits for its answer.
    ///
    /// # Errors
    ///
    /// [`Unanswered`] when the batch carrying the call stopped before answering it.
    pub async fn submit(self: &Arc<Self>, ask: T) -> Result<A, Unanswered> {
        let (reply, answer) = oneshot::channel();
        self.queue.lock().calls.push(Call { ask, reply });
        self.pump();
        answer.await.map_err(|_| Unanswered)
    }

    /// Starts a batch when calls are queued, a slot is free and no started batch is still
    /// about to take the queue. A finishing batch frees its slot before pumping, so a call
    /// queued while every slot was taken is always picked up.
    fn pump(self: &Arc<Self>) {
        let slot = {
            let mut queue = self.queue.lock();
            if queue.calls.is_empty() || queue.starting {
                return;
            }
            let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                return;
            };
            queue.starting = true;
            slot
        };
        let mut done = Finished {
            coalescer: Arc::clone(self),
            slot: Some(slot),
            took: false,
            ended: false,
        };
        tokio::spawn(async move {
            done.coalescer.settle().await;
            let batch: Vec<Call<T, A>> = {
                let mut queue = done.coalescer.queue.lock();
                queue.starting = false;
                done.took = true;
                if queue.calls.len() <= done.coalescer.max {
                    std::mem::take(&mut queue.calls)
                } else {
                    queue.calls.drain(..done.coalescer.max).collect()
                }
            };
            // More than one batch's worth: another slot may take the rest now.
            done.coalescer.pump();
            if !batch.is_empty() {
                let mut lease = Lease {
                    from: Arc::clone(&done.coalescer.connections),
                    conn: None,
                    fit: true,
                    ran: false,
                };
                let coalescer = Arc::clone(&done.coalescer);
                (coalescer.run)(&coalescer.context, &mut lease, batch).await;
                lease.ran = true;
            }
            done.ended = true;
            drop(done);
        });
    }
}

impl<C, T, A> Coalescer<C, T, A> {
    /// Yields to the scheduler until a yield brings no new call (or a batch is full): callers
    /// woken together, on any worker thread, join the batch about to start.
    async fn settle(&self) {
        let mut queued = self.queue.lock().calls.len();
        while queued < self.max {
            tokio::task::yield_now().await;
            let now = self.queue.lock().calls.len();
            if now == queued {
                return;
            }
            queued = now;
        }
    }
}

/// Frees a batch's slot and starts the next batch, also when the batch panicked. A batch task
/// dropped unfinished (its runtime shutting down) starts none: spawning there would drop the
/// new task at once, and its drop would spawn again. Calls still queued then go with the next
/// call's batch.
struct Finished<C: Send + Sync + 'static, T: Send + 'static, A: Send + 'static> {
    coalescer: Arc<Coalescer<C, T, A>>,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Whether the batch took its calls from the queue (and so cleared `starting`). A batch
    /// task dropped before that (its runtime shutting down while it yielded) clears it here,
    /// or no batch would ever start again.
    took: bool,
    /// Whether the batch task ran to its end.
    ended: bool,
}

impl<C: Send + Sync + 'static, T: Send + 'static, A: Send + 'static> Drop for Finished<C, T, A> {
    fn drop(&mut self) {
        if !self.took {
            self.coalescer.queue.lock().starting = false;
        }
        drop(self.slot.take());
        if self.ended || std::thread::panicking() {
            self.coalescer.pump();
        }
    }
}

impl<C, T, A> std::fmt::Debug for Coalescer<C, T, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("queued", &self.queue.lock().calls.len())
            .field("free_slots", &self.slots.available_permits())
            .field("kept_connections", &self.connections.idle.lock().len())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each batch answers its calls with the batch's size (and never asks for a connection).
    fn sizes<'l>(
        _context: &'l (),
        _lease: &'l mut Lease,
        calls: Vec<Call<(), usize>>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'l>> {
        Box::pin(async move {
            let n = calls.len();
            for call in calls {
                call.answer(n);
            }
        })
    }

    fn coalescer(max: usize) -> Arc<Coalescer<(), (), usize>> {
        // Never connects: the batches here do not use it.
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://nobody@127.0.0.1:1/none")
            .unwrap();
        Arc::new(Coalescer::new((), pool, 1, max, sizes))
    }

    /// Submits `n` calls from tasks that all become ready at once (spawned by one task on a
    /// worker thread before any of them runs), and returns the size of each one's batch.
    async fn ready_together(queue: &Arc<Coalescer<(), (), usize>>, n: usize) -> Vec<usize> {
        let queue = Arc::clone(queue);
        let tasks = tokio::spawn(async move {
            (0..n)
                .map(|_| {
                    let queue = Arc::clone(&queue);
                    tokio::spawn(async move { queue.submit(()).await.unwrap() })
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        let mut sizes = Vec::new();
        for task in tasks {
            sizes.push(task.await.unwrap());
        }
        sizes.sort_unstable();
        sizes
    }

    /// Callers that become ready together (as the answers of one batch wake them) share the
    /// next batch, not one going alone with the rest queued behind it; a lone call runs alone.
    /// (On a worker thread a task spawned by a task runs next: the batch the first caller
    /// starts would otherwise take only that caller.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn callers_ready_together_share_a_batch() {
        let queue = coalescer(256);
        assert_eq!(ready_together(&queue, 10).await, [10; 10]);
        assert_eq!(queue.submit(()).await.unwrap(), 1);
    }

    /// A batch carries at most `max` calls; the rest go in the batches after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn batches_are_bounded() {
        let queue = coalescer(4);
        assert_eq!(
            ready_together(&queue, 10).await,
            [2, 2, 4, 4, 4, 4, 4, 4, 4, 4]
        );
    }

    /// A runtime shut down while a batch was about to start (its task dropped while it
    /// yielded) does not leave the queue stuck: a call made afterwards, on another runtime, is
    /// answered.
    #[test]
    fn a_batch_dropped_before_it_started_does_not_stick() {
        let first = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let queue = first.block_on(async { coalescer(256) });
        first.block_on({
            let queue = Arc::clone(&queue);
            async move {
                tokio::spawn(async move { queue.submit(()).await });
                // The caller runs and starts a batch, which yields; this returns before the
                // batch takes its call.
                tokio::task::yield_now().await;
            }
        });
        assert!(
            queue.queue.lock().starting,
            "the batch was cut short before it took"
        );
        drop(first);
        let second = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let answered = second.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(10), queue.submit(())).await
        });
        // The dropped caller's call is still queued, so the batch carries both.
        assert_eq!(answered.expect("answered, not stuck").unwrap(), 2);
    }
}
