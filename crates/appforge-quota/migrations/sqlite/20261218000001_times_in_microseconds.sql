-- Times become microseconds since the Unix epoch (UTC), the encoding of every appforge SQLite
-- table (they were milliseconds). Durations (burst_period_ms) stay as they are.
UPDATE usage_quotas SET
    last_reset_daily = last_reset_daily * 1000,
    last_reset_monthly = last_reset_monthly * 1000,
    period_start = period_start * 1000,
    period_end = period_end * 1000,
    updated_at = updated_at * 1000;

UPDATE quota_reservations SET
    day_start = day_start * 1000,
    month_start = month_start * 1000,
    created_at = created_at * 1000,
    expires_at = expires_at * 1000,
    settled_at = settled_at * 1000;
