-- Times become microseconds since the Unix epoch (UTC), the encoding of every appforge SQLite
-- table (they were milliseconds).
UPDATE uploads SET
    created_at = created_at * 1000,
    deleted_at = deleted_at * 1000;
