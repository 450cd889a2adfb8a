-- Generations one member may start per day in the org's space; NULL: only the org's pooled
-- quota limits them.
ALTER TABLE orgs ADD COLUMN member_daily_cap bigint;
