//! Typed jobs run on SQLite and their results stay in the file after the pool stops.

use appforge_example_job_worker::{SHUTDOWN, enqueue_all, finished, open, workers};
use appforge_jobs::JobStatus;
use serde_json::json;

#[tokio::test]
async fn typed_jobs_run_and_their_results_outlive_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    let queue = open(&url).await.unwrap();
    let pool = workers(&queue).unwrap();
    let user = uuid::Uuid::new_v4();
    let ids = enqueue_all(&queue, user, &["one two three", "", "a b"])
        .await
        .unwrap();
    for (id, words) in ids.iter().zip([3, 0, 2]) {
        let job = finished(&queue, user, *id).await.unwrap();
        assert_eq!(job.status, JobStatus::Completed);
        assert_eq!(job.kind, "count_words");
        assert_eq!(job.result, Some(json!({ "words": words })));
    }
    pool.shutdown(SHUTDOWN).await;
    drop(queue);

    // A new queue over the same file sees the finished jobs.
    let reopened = open(&url).await.unwrap();
    let job = reopened.get(user, ids[0]).await.unwrap();
    assert_eq!(job.result, Some(json!({ "words": 3 })));
    // Another user's id is not found.
    assert!(reopened.get(uuid::Uuid::new_v4(), ids[0]).await.is_err());
}
