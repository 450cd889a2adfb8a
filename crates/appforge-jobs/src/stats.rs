use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{JobStatus, Priority};

/// How many jobs sit in one status at one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepthCount {
    /// The status.
    pub status: JobStatus,
    /// The priority.
    pub priority: Priority,
    /// The number of jobs.
    pub count: u64,
}

/// A snapshot of the queue's health, from [`JobQueue::stats`](crate::JobQueue::stats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueueStats {
    /// Jobs by status and priority.
    pub depth: Vec<DepthCount>,
    /// Jobs completed within the window.
    pub completed_in_window: u64,
    /// Jobs failed within the window.
    pub failed_in_window: u64,
    /// `failed / (completed + failed)` within the window; 0 when nothing finished.
    pub failure_rate: f64,
    /// Median run time of the jobs completed within the window.
    pub duration_p50_ms: Option<u64>,
    /// 95th percentile run time of the jobs completed within the window.
    pub duration_p95_ms: Option<u64>,
    /// How long the oldest runnable pending job has waited since it was enqueued.
    pub oldest_pending_age: Option<Duration>,
    /// Running jobs whose lease has expired (stuck, waiting for rescue).
    pub expired_leases: u64,
    /// Worker pools that heartbeated recently.
    pub live_workers: u64,
    /// The window the counts cover.
    pub window: Duration,
}

impl QueueStats {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn assemble(
        depth: Vec<DepthCount>,
        completed: u64,
        failed: u64,
        p50: Option<u64>,
        p95: Option<u64>,
        oldest_pending_age: Option<Duration>,
        expired_leases: u64,
        window: Duration,
    ) -> Self {
        let finished = completed + failed;
        #[allow(clippy::cast_precision_loss)] // a ratio of counts far below 2^52
        let failure_rate = if finished == 0 {
            0.0
        } else {
            failed as f64 / finished as f64
        };
        Self {
            depth,
            completed_in_window: completed,
            failed_in_window: failed,
            failure_rate,
            duration_p50_ms: p50,
            duration_p95_ms: p95,
            oldest_pending_age,
            expired_leases,
            live_workers: 0,
            window,
        }
    }

    /// Jobs in `status`, over every priority.
    #[must_use]
    pub fn count(&self, status: JobStatus) -> u64 {
        self.depth
            .iter()
            .filter(|d| d.status == status)
            .map(|d| d.count)
            .sum()
    }
}

/// The `p`th percentile (nearest rank) of sorted values.
pub(crate) fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), Some(50));
        assert_eq!(percentile(&values, 95), Some(95));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
