-- The event ledger: every verified Stripe event, once.
CREATE TABLE IF NOT EXISTS stripe_events (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    api_version TEXT,
    received_at TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    error TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stripe_events_status ON stripe_events (status, received_at);

-- Which user a Stripe customer belongs to.
CREATE TABLE IF NOT EXISTS stripe_customers (
    stripe_customer_id TEXT PRIMARY KEY NOT NULL,
    user_id UUID NOT NULL,
    linked_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS stripe_customers_user ON stripe_customers (user_id);

CREATE TABLE IF NOT EXISTS subscriptions (
    stripe_subscription_id TEXT PRIMARY KEY NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    user_id UUID,
    plan TEXT NOT NULL DEFAULT 'free',
    status TEXT NOT NULL,
    price_id TEXT,
    quantity BIGINT NOT NULL DEFAULT 1,
    current_period_start TIMESTAMPTZ,
    current_period_end TIMESTAMPTZ,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    past_due BOOLEAN NOT NULL DEFAULT FALSE,
    grace_until TIMESTAMPTZ,
    synced_version BIGINT NOT NULL DEFAULT 0,
    payment_version BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_user ON subscriptions (user_id);
CREATE INDEX IF NOT EXISTS subscriptions_customer ON subscriptions (stripe_customer_id);
CREATE INDEX IF NOT EXISTS subscriptions_grace ON subscriptions (grace_until) WHERE past_due;

CREATE TABLE IF NOT EXISTS invoices (
    stripe_invoice_id TEXT PRIMARY KEY NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    stripe_subscription_id TEXT,
    status TEXT NOT NULL,
    amount_due BIGINT NOT NULL,
    amount_paid BIGINT NOT NULL,
    currency TEXT NOT NULL,
    hosted_invoice_url TEXT,
    version BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS invoices_customer ON invoices (stripe_customer_id);
