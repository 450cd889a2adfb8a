-- Times are microseconds since the Unix epoch (UTC), so that ranges compare as integers.
CREATE TABLE IF NOT EXISTS analytics_events (
    id BLOB PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    event_type TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS analytics_events_created_at_idx ON analytics_events (created_at);
CREATE INDEX IF NOT EXISTS analytics_events_user_created_idx ON analytics_events (user_id, created_at);
CREATE INDEX IF NOT EXISTS analytics_events_type_created_idx ON analytics_events (event_type, created_at);
