//! Typed jobs on SQLite, end to end:
//!
//! ```text
//! cargo run -p appforge-example-job-worker -- "one two three" "four five"
//! ```
//!
//! Enqueues a `count_words` job per argument in `jobs.db`, runs them in a pool of two workers,
//! and prints each job's result.

// A command-line program: results go to stdout.
#![allow(clippy::print_stdout)]

use appforge_example_job_worker::{SHUTDOWN, enqueue_all, finished, open, workers};
use appforge_jobs::JobStatus;

#[tokio::main]
async fn main() -> appforge_jobs::Result<()> {
    let texts: Vec<String> = std::env::args().skip(1).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let queue = open("sqlite://jobs.db").await?;
    let pool = workers(&queue)?;
    let user = uuid::Uuid::new_v4();
    for id in enqueue_all(&queue, user, &texts).await? {
        let job = finished(&queue, user, id).await?;
        match job.status {
            JobStatus::Completed => println!("{id}: {}", job.result.unwrap_or_default()),
            status => println!("{id}: {status}"),
        }
    }
    pool.shutdown(SHUTDOWN).await;
    Ok(())
}
