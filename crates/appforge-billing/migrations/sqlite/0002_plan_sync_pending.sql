-- Plan changes committed with their event but not yet confirmed written to the quota: one row
-- per user, written in the event's transaction and removed once the user's plan is set. A row
-- left behind (a crash or a timeout between the two) is completed by the periodic pass or by a
-- redelivery of its event.
CREATE TABLE IF NOT EXISTS plan_sync_pending (
    user_id BLOB PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    token BLOB NOT NULL,
    pending_since TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS plan_sync_pending_event ON plan_sync_pending (event_id);
CREATE INDEX IF NOT EXISTS plan_sync_pending_since ON plan_sync_pending (pending_since);

-- The grace deadline whose downgrade the periodic pass enforced: later passes skip it.
ALTER TABLE subscriptions ADD COLUMN grace_enforced_until TEXT;
