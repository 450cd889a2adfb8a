-- Jobs someone is subscribed to, so that their events are sent across processes only when
-- watched. Unlogged: it is soft state, rebuilt by subscribers.
CREATE UNLOGGED TABLE generation_job_watches (
    job_id uuid NOT NULL,
    watcher uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (job_id, watcher)
);
