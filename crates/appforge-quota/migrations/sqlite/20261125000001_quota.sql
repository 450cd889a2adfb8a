-- Plans, usage and reservations of appforge-quota. Times are milliseconds since the epoch (UTC).

CREATE TABLE IF NOT EXISTS pricing_plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    price_monthly INTEGER,          -- cents
    price_yearly INTEGER,           -- cents
    daily_limit INTEGER,            -- generations a day, NULL = unlimited
    monthly_limit INTEGER,          -- generations a month, NULL = unlimited
    features TEXT,                  -- JSON array of text
    stripe_price_id_monthly TEXT,
    stripe_price_id_yearly TEXT,
    is_active INTEGER DEFAULT 1,
    monthly_token_limit INTEGER,    -- tokens a month, NULL = unlimited
    burst_requests INTEGER,
    burst_period_ms INTEGER,
    burst_size INTEGER,
    priority INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS usage_quotas (
    user_id BLOB PRIMARY KEY,
    plan TEXT NOT NULL,
    daily_generations INTEGER NOT NULL DEFAULT 0,
    monthly_generations INTEGER NOT NULL DEFAULT 0,
    monthly_tokens_used INTEGER NOT NULL DEFAULT 0,
    total_tokens_used INTEGER NOT NULL DEFAULT 0,
    last_reset_daily INTEGER NOT NULL,      -- start of the current daily window
    last_reset_monthly INTEGER NOT NULL,    -- start of the current monthly window
    period_start INTEGER,                   -- billing period, when set
    period_end INTEGER,
    updated_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS quota_reservations (
    id BLOB PRIMARY KEY,
    user_id BLOB NOT NULL,
    cost INTEGER NOT NULL,
    state TEXT NOT NULL,                    -- pending | committed | refunded | expired
    day_start INTEGER NOT NULL,             -- the windows the cost was charged to
    month_start INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    settled_at INTEGER,
    tokens INTEGER
);

CREATE INDEX IF NOT EXISTS quota_reservations_pending_user
    ON quota_reservations (user_id, expires_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS quota_reservations_pending_expiry
    ON quota_reservations (expires_at) WHERE state = 'pending';
