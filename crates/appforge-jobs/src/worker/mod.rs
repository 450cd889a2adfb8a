//! Worker pools: claim, run, heartbeat, rescue, cancel, shut down.

mod context;
mod pool;

pub use context::JobContext;
pub use pool::{ShutdownReport, WorkerPool, WorkerPoolBuilder};
