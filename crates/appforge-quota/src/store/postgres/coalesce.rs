//! Coalescing concurrent calls into one statement.
//!
//! Written here rather than taken from a crate: what is needed is small (a queue, a bound on
//! statements in flight, one reply per call), and a lone call must not wait on a timer.
//!
//! There is no timer. A call joins the queue and, if fewer than `slots` batches are running,
//! starts one with everything queued. While batches run, calls queue up, and the next batch to
//! start takes them all: a lone call runs at once, and under load each statement carries the
//! calls that arrived while the previous ones ran. Batches run on spawned tasks, so a caller
//! that gives up (its future dropped) does not cut short a statement that carries other calls.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use sqlx::PgPool;
use tokio::sync::{Semaphore, oneshot};

use crate::{Error, Result};

/// One queued call: what it asks and where its answer goes.
pub(super) struct Call<T, A> {
    pub(super) ask: T,
    reply: oneshot::Sender<Result<A>>,
}

impl<T, A> Call<T, A> {
    /// Answers the call (a caller that went away is not an error).
    pub(super) fn answer(self, answer: Result<A>) {
        let _ = self.reply.send(answer);
    }
}

/// Runs one batch, answering every call in it.
pub(super) type RunBatch<T, A> =
    fn(PgPool, Vec<Call<T, A>>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// A queue of calls of one kind, run as batches of at most `max` calls, at most `slots` at a
/// time.
pub(super) struct Coalescer<T, A> {
    pool: PgPool,
    queue: Mutex<Vec<Call<T, A>>>,
    slots: Arc<Semaphore>,
    max: usize,
    run: RunBatch<T, A>,
}

impl<T: Send + 'static, A: Send + 'static> Coalescer<T, A> {
    pub(super) fn new(pool: PgPool, slots: usize, max: usize, run: RunBatch<T, A>) -> Self {
        Self {
            pool,
            queue: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(slots.max(1))),
            max: max.max(1),
            run,
        }
    }

    /// Queues `ask` and waits for its answer.
    pub(super) async fn submit(self: &Arc<Self>, ask: T) -> Result<A> {
        let (reply, answer) = oneshot::channel();
        self.queue.lock().push(Call { ask, reply });
        self.pump();
        answer.await.unwrap_or_else(|_| {
            Err(Error::Busy(
                "the batch carrying this call stopped before answering".into(),
            ))
        })
    }

    /// Starts batches while there are queued calls and free slots. A finishing batch frees its
    /// slot before pumping, so a call queued while every slot was taken is always picked up.
    fn pump(self: &Arc<Self>) {
        loop {
            let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
                return;
            };
            let batch: Vec<Call<T, A>> = {
                let mut queue = self.queue.lock();
                if queue.len() <= self.max {
                    std::mem::take(&mut *queue)
                } else {
                    queue.drain(..self.max).collect()
                }
            };
            if batch.is_empty() {
                return;
            }
            let done = Finished {
                coalescer: Arc::clone(self),
                slot: Some(slot),
            };
            tokio::spawn(async move {
                (done.coalescer.run)(done.coalescer.pool.clone(), batch).await;
                drop(done);
            });
        }
    }
}

/// Frees a batch's slot and starts the next batch, also when the batch panicked.
struct Finished<T: Send + 'static, A: Send + 'static> {
    coalescer: Arc<Coalescer<T, A>>,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<T: Send + 'static, A: Send + 'static> Drop for Finished<T, A> {
    fn drop(&mut self) {
        drop(self.slot.take());
        self.coalescer.pump();
    }
}

impl<T, A> std::fmt::Debug for Coalescer<T, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("queued", &self.queue.lock().len())
            .field("free_slots", &self.slots.available_permits())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}
