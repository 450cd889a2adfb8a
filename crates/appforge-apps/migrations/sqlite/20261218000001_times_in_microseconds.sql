-- Times become microseconds since the Unix epoch (UTC), the encoding of every appforge SQLite
-- table (they were milliseconds). Durations (duration_ms) stay as they are.
UPDATE generated_apps SET
    created_at = created_at * 1000,
    updated_at = updated_at * 1000,
    deleted_at = deleted_at * 1000;

UPDATE app_versions SET created_at = created_at * 1000;
