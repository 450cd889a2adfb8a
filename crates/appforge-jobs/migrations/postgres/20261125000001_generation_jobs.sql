-- Generation jobs: the seed's generation_jobs plus what the queue needs.
CREATE TABLE generation_jobs (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    kind text NOT NULL,
    priority smallint NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    payload jsonb NOT NULL,
    result jsonb,
    error_message text,
    attempt integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    input_tokens bigint,
    output_tokens bigint,
    duration_ms bigint,
    created_at timestamptz NOT NULL,
    run_at timestamptz NOT NULL,
    started_at timestamptz,
    completed_at timestamptz,
    lease_owner uuid,
    lease_expires_at timestamptz,
    progress jsonb,
    cancel_requested boolean NOT NULL DEFAULT false,
    dedupe_key text
);

-- Runnable rows in claim order (partial: finished history does not bloat it).
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
    id uuid PRIMARY KEY,
    name text NOT NULL,
    started_at timestamptz NOT NULL,
    last_heartbeat timestamptz NOT NULL,
    concurrency integer NOT NULL,
    running integer NOT NULL
);
