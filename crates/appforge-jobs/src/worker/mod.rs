//! Worker pools: claim, run, heartbeat, rescue, cancel, shut down.

mod context;
mod pool;

pub use context::{JobContext, TypedHandler};
pub use pool::{Admit, DEFAULT_PREFETCH, ShutdownReport, WorkerPool, WorkerPoolBuilder};
