-- Jobs in an org's space: org_id names the org, NULL for the submitter's personal space;
-- user_id stays the submitter. Nullable without a default: no table rewrite.
ALTER TABLE generation_jobs ADD COLUMN org_id uuid;

-- An org's history, newest first. Partial: personal jobs are listed through
-- generation_jobs_history.
CREATE INDEX generation_jobs_org_history ON generation_jobs (org_id, created_at DESC, id DESC)
    WHERE org_id IS NOT NULL;
