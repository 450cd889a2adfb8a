-- Saved apps (the seed's generated_apps) and their versions. Times are milliseconds since the
-- epoch; files and metadata are JSON text.
CREATE TABLE generated_apps (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    title TEXT NOT NULL,
    title_folded TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    is_public INTEGER NOT NULL DEFAULT 0,
    preview_slug TEXT UNIQUE,
    preview_enabled INTEGER NOT NULL DEFAULT 0,
    published_version INTEGER,
    current_version INTEGER NOT NULL,
    origin_job_id BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);

-- A user's library, newest first.
CREATE INDEX generated_apps_library ON generated_apps (user_id, created_at DESC, id DESC);
-- The app a generation job created, once.
CREATE UNIQUE INDEX generated_apps_origin ON generated_apps (user_id, origin_job_id)
    WHERE origin_job_id IS NOT NULL;
-- Purging after the retention period.
CREATE INDEX generated_apps_deleted ON generated_apps (deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE app_versions (
    app_id BLOB NOT NULL REFERENCES generated_apps (id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    base_version INTEGER,
    files TEXT NOT NULL,
    job_id BLOB,
    prompt TEXT,
    change_summary TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, number)
);

-- A job saves one version of an app, however often its worker retries.
CREATE UNIQUE INDEX app_versions_job ON app_versions (app_id, job_id) WHERE job_id IS NOT NULL;
