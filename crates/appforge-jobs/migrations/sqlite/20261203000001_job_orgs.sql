-- Jobs in an org's space: org_id names the org (UUID bytes), NULL for the submitter's
-- personal space; user_id stays the submitter.
ALTER TABLE generation_jobs ADD COLUMN org_id BLOB;

-- An org's history, newest first (times are microseconds since the Unix epoch). Partial:
-- personal jobs are listed through generation_jobs_history.
CREATE INDEX generation_jobs_org_history ON generation_jobs (org_id, created_at DESC, id DESC)
    WHERE org_id IS NOT NULL;
