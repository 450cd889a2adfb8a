-- Saved apps (the seed's generated_apps) and their versions.
CREATE TABLE generated_apps (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    title text NOT NULL,
    title_folded text NOT NULL,
    description text NOT NULL DEFAULT '',
    metadata jsonb NOT NULL DEFAULT '{}',
    is_public boolean NOT NULL DEFAULT false,
    preview_slug text UNIQUE,
    preview_enabled boolean NOT NULL DEFAULT false,
    published_version integer,
    current_version integer NOT NULL,
    origin_job_id uuid,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);

-- A user's library, newest first.
CREATE INDEX generated_apps_library ON generated_apps (user_id, created_at DESC, id DESC);
-- The app a generation job created, once.
CREATE UNIQUE INDEX generated_apps_origin ON generated_apps (user_id, origin_job_id)
    WHERE origin_job_id IS NOT NULL;
-- Purging after the retention period.
CREATE INDEX generated_apps_deleted ON generated_apps (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE app_versions (
    app_id uuid NOT NULL REFERENCES generated_apps (id) ON DELETE CASCADE,
    number integer NOT NULL,
    base_version integer,
    files jsonb NOT NULL,
    job_id uuid,
    prompt text,
    change_summary text,
    input_tokens bigint NOT NULL DEFAULT 0,
    output_tokens bigint NOT NULL DEFAULT 0,
    duration_ms bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, number)
);

-- A job saves one version of an app, however often its worker retries.
CREATE UNIQUE INDEX app_versions_job ON app_versions (app_id, job_id) WHERE job_id IS NOT NULL;
