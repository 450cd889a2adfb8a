-- Plans, usage and reservations of appforge-quota.

CREATE TABLE IF NOT EXISTS pricing_plans (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    price_monthly INTEGER,          -- cents
    price_yearly INTEGER,           -- cents
    daily_limit INTEGER,            -- generations a day, NULL = unlimited
    monthly_limit INTEGER,          -- generations a month, NULL = unlimited
    features JSONB,
    stripe_price_id_monthly TEXT,
    stripe_price_id_yearly TEXT,
    is_active BOOLEAN DEFAULT TRUE,
    monthly_token_limit BIGINT,     -- tokens a month, NULL = unlimited
    burst_requests INTEGER,
    burst_period_ms BIGINT,
    burst_size INTEGER,
    priority SMALLINT NOT NULL DEFAULT 0,
    position INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS usage_quotas (
    user_id UUID PRIMARY KEY,
    plan TEXT NOT NULL,
    daily_generations BIGINT NOT NULL DEFAULT 0 CHECK (daily_generations >= 0),
    monthly_generations BIGINT NOT NULL DEFAULT 0 CHECK (monthly_generations >= 0),
    monthly_tokens_used BIGINT NOT NULL DEFAULT 0,
    total_tokens_used BIGINT NOT NULL DEFAULT 0,
    last_reset_daily TIMESTAMPTZ NOT NULL,      -- start of the current daily window
    last_reset_monthly TIMESTAMPTZ NOT NULL,    -- start of the current monthly window
    period_start TIMESTAMPTZ,                   -- billing period, when set
    period_end TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS quota_reservations (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL,
    cost INTEGER NOT NULL,
    state TEXT NOT NULL,                        -- pending | committed | refunded | expired
    day_start TIMESTAMPTZ NOT NULL,             -- the windows the cost was charged to
    month_start TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    settled_at TIMESTAMPTZ,
    tokens BIGINT
);

CREATE INDEX IF NOT EXISTS quota_reservations_pending_user
    ON quota_reservations (user_id, expires_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS quota_reservations_pending_expiry
    ON quota_reservations (expires_at) WHERE state = 'pending';
