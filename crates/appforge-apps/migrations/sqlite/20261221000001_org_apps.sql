-- Apps in an organization's space: org_id is the org, NULL for the creator's personal space;
-- user_id stays the user who created the app.
ALTER TABLE generated_apps ADD COLUMN org_id BLOB;

-- An org's library, newest first (a user's personal library reads generated_apps_library).
CREATE INDEX generated_apps_org_library ON generated_apps (org_id, created_at DESC, id DESC)
    WHERE org_id IS NOT NULL;

-- The app a generation job created, once per space: per user for personal apps, per org for
-- an org's apps (whichever member created it).
DROP INDEX generated_apps_origin;
CREATE UNIQUE INDEX generated_apps_origin ON generated_apps (user_id, origin_job_id)
    WHERE origin_job_id IS NOT NULL AND org_id IS NULL;
CREATE UNIQUE INDEX generated_apps_org_origin ON generated_apps (org_id, origin_job_id)
    WHERE origin_job_id IS NOT NULL AND org_id IS NOT NULL;
