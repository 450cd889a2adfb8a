-- The pending-reservation indexes cover the rows not yet settled (`settled_at IS NULL`, which
-- holds exactly while `state = 'pending'`). Their predicate names a column that the commit and
-- refund statements do not filter on, so the planner can never answer those by scanning a
-- whole pending index (plus the entries of every row settled since the last vacuum) where the
-- primary key finds each reservation at once; the release and sweep statements name it.

DROP INDEX IF EXISTS quota_reservations_pending_user;
DROP INDEX IF EXISTS quota_reservations_pending_expiry;

CREATE INDEX IF NOT EXISTS quota_reservations_open_user
    ON quota_reservations (user_id, expires_at) WHERE settled_at IS NULL;
CREATE INDEX IF NOT EXISTS quota_reservations_open_expiry
    ON quota_reservations (expires_at) WHERE settled_at IS NULL;
