-- Generation jobs (the seed's generation_jobs plus queue columns). Times are microseconds
-- since the Unix epoch; ids are UUID bytes; JSON is text.
CREATE TABLE generation_jobs (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    kind TEXT NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    payload TEXT NOT NULL,
    result TEXT,
    error_message TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    duration_ms INTEGER,
    created_at INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    started_at INTEGER,
    completed_at INTEGER,
    lease_owner BLOB,
    lease_expires_at INTEGER,
    progress TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    dedupe_key TEXT
) WITHOUT ROWID;

-- Runnable rows in claim order.
CREATE INDEX generation_jobs_runnable ON generation_jobs (priority DESC, run_at, id)
    WHERE status = 'pending';
-- Leases to rescue.
CREATE INDEX generation_jobs_leases ON generation_jobs (lease_expires_at)
    WHERE status = 'processing';
-- A user's history, newest first.
CREATE INDEX generation_jobs_history ON generation_jobs (user_id, created_at DESC, id DESC);
-- One active job per dedupe key.
CREATE UNIQUE INDEX generation_jobs_dedupe ON generation_jobs (dedupe_key)
    WHERE dedupe_key IS NOT NULL AND status IN ('pending', 'processing');
-- Retention and windowed stats.
CREATE INDEX generation_jobs_finished ON generation_jobs (completed_at)
    WHERE status IN ('completed', 'failed', 'cancelled');

CREATE TABLE generation_job_workers (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL,
    concurrency INTEGER NOT NULL,
    running INTEGER NOT NULL
);
