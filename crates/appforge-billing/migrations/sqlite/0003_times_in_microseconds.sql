-- Times become microseconds since the Unix epoch (UTC), the encoding of every appforge SQLite
-- table (they were RFC 3339 text, as sqlx writes chrono times: "2026-12-03T13:20:05.123456+00:00",
-- the fraction present only when not zero, up to nine digits). Each table with times is rebuilt
-- with INTEGER columns, so that comparisons are numeric; a value converts as its whole seconds
-- (the text without its fraction, offset applied) plus the first six digits of its fraction.

CREATE TABLE stripe_events_new (
    id TEXT PRIMARY KEY NOT NULL,
    type TEXT NOT NULL,
    created INTEGER NOT NULL,
    api_version TEXT,
    received_at INTEGER NOT NULL,
    processed_at INTEGER,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    payload TEXT NOT NULL
);
INSERT INTO stripe_events_new (id, type, created, api_version, received_at, processed_at, status, attempts, error, payload)
SELECT
    id,
    type,
    CASE WHEN created IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(created, 1, 19) || (CASE WHEN created LIKE '%Z' THEN 'Z' WHEN substr(created, -6, 1) IN ('+', '-') THEN substr(created, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(created, 20, 1) = '.' THEN CAST(substr(substr(created, 21, length(created) - 20 - (CASE WHEN created LIKE '%Z' THEN 1 WHEN substr(created, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    api_version,
    CASE WHEN received_at IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(received_at, 1, 19) || (CASE WHEN received_at LIKE '%Z' THEN 'Z' WHEN substr(received_at, -6, 1) IN ('+', '-') THEN substr(received_at, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(received_at, 20, 1) = '.' THEN CAST(substr(substr(received_at, 21, length(received_at) - 20 - (CASE WHEN received_at LIKE '%Z' THEN 1 WHEN substr(received_at, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    CASE WHEN processed_at IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(processed_at, 1, 19) || (CASE WHEN processed_at LIKE '%Z' THEN 'Z' WHEN substr(processed_at, -6, 1) IN ('+', '-') THEN substr(processed_at, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(processed_at, 20, 1) = '.' THEN CAST(substr(substr(processed_at, 21, length(processed_at) - 20 - (CASE WHEN processed_at LIKE '%Z' THEN 1 WHEN substr(processed_at, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    status,
    attempts,
    error,
    payload
FROM stripe_events;
DROP TABLE stripe_events;
ALTER TABLE stripe_events_new RENAME TO stripe_events;
CREATE INDEX stripe_events_status ON stripe_events (status, received_at);

CREATE TABLE stripe_customers_new (
    stripe_customer_id TEXT PRIMARY KEY NOT NULL,
    user_id BLOB NOT NULL,
    linked_at INTEGER NOT NULL
);
INSERT INTO stripe_customers_new (stripe_customer_id, user_id, linked_at)
SELECT
    stripe_customer_id,
    user_id,
    CASE WHEN linked_at IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(linked_at, 1, 19) || (CASE WHEN linked_at LIKE '%Z' THEN 'Z' WHEN substr(linked_at, -6, 1) IN ('+', '-') THEN substr(linked_at, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(linked_at, 20, 1) = '.' THEN CAST(substr(substr(linked_at, 21, length(linked_at) - 20 - (CASE WHEN linked_at LIKE '%Z' THEN 1 WHEN substr(linked_at, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END
FROM stripe_customers;
DROP TABLE stripe_customers;
ALTER TABLE stripe_customers_new RENAME TO stripe_customers;
CREATE INDEX stripe_customers_user ON stripe_customers (user_id);

CREATE TABLE subscriptions_new (
    stripe_subscription_id TEXT PRIMARY KEY NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    user_id BLOB,
    plan TEXT NOT NULL DEFAULT 'free',
    status TEXT NOT NULL,
    price_id TEXT,
    quantity INTEGER NOT NULL DEFAULT 1,
    current_period_start INTEGER,
    current_period_end INTEGER,
    cancel_at_period_end BOOLEAN NOT NULL DEFAULT FALSE,
    past_due BOOLEAN NOT NULL DEFAULT FALSE,
    grace_until INTEGER,
    synced_version INTEGER NOT NULL DEFAULT 0,
    payment_version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    grace_enforced_until INTEGER
);
INSERT INTO subscriptions_new (stripe_subscription_id, stripe_customer_id, user_id, plan, status, price_id, quantity, current_period_start, current_period_end, cancel_at_period_end, past_due, grace_until, synced_version, payment_version, created_at, updated_at, grace_enforced_until)
SELECT
    stripe_subscription_id,
    stripe_customer_id,
    user_id,
    plan,
    status,
    price_id,
    quantity,
    CASE WHEN current_period_start IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(current_period_start, 1, 19) || (CASE WHEN current_period_start LIKE '%Z' THEN 'Z' WHEN substr(current_period_start, -6, 1) IN ('+', '-') THEN substr(current_period_start, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(current_period_start, 20, 1) = '.' THEN CAST(substr(substr(current_period_start, 21, length(current_period_start) - 20 - (CASE WHEN current_period_start LIKE '%Z' THEN 1 WHEN substr(current_period_start, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    CASE WHEN current_period_end IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(current_period_end, 1, 19) || (CASE WHEN current_period_end LIKE '%Z' THEN 'Z' WHEN substr(current_period_end, -6, 1) IN ('+', '-') THEN substr(current_period_end, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(current_period_end, 20, 1) = '.' THEN CAST(substr(substr(current_period_end, 21, length(current_period_end) - 20 - (CASE WHEN current_period_end LIKE '%Z' THEN 1 WHEN substr(current_period_end, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    cancel_at_period_end,
    past_due,
    CASE WHEN grace_until IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(grace_until, 1, 19) || (CASE WHEN grace_until LIKE '%Z' THEN 'Z' WHEN substr(grace_until, -6, 1) IN ('+', '-') THEN substr(grace_until, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(grace_until, 20, 1) = '.' THEN CAST(substr(substr(grace_until, 21, length(grace_until) - 20 - (CASE WHEN grace_until LIKE '%Z' THEN 1 WHEN substr(grace_until, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    synced_version,
    payment_version,
    CASE WHEN created_at IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(created_at, 1, 19) || (CASE WHEN created_at LIKE '%Z' THEN 'Z' WHEN substr(created_at, -6, 1) IN ('+', '-') THEN substr(created_at, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(created_at, 20, 1) = '.' THEN CAST(substr(substr(created_at, 21, length(created_at) - 20 - (CASE WHEN created_at LIKE '%Z' THEN 1 WHEN substr(created_at, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    CASE WHEN updated_at IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(updated_at, 1, 19) || (CASE WHEN updated_at LIKE '%Z' THEN 'Z' WHEN substr(updated_at, -6, 1) IN ('+', '-') THEN substr(updated_at, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(updated_at, 20, 1) = '.' THEN CAST(substr(substr(updated_at, 21, length(updated_at) - 20 - (CASE WHEN updated_at LIKE '%Z' THEN 1 WHEN substr(updated_at, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END,
    CASE WHEN grace_enforced_until IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(grace_enforced_until, 1, 19) || (CASE WHEN grace_enforced_until LIKE '%Z' THEN 'Z' WHEN substr(grace_enforced_until, -6, 1) IN ('+', '-') THEN substr(grace_enforced_until, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(grace_enforced_until, 20, 1) = '.' THEN CAST(substr(substr(grace_enforced_until, 21, length(grace_enforced_until) - 20 - (CASE WHEN grace_enforced_until LIKE '%Z' THEN 1 WHEN substr(grace_enforced_until, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_user ON subscriptions (user_id);
CREATE INDEX subscriptions_customer ON subscriptions (stripe_customer_id);
CREATE INDEX subscriptions_grace ON subscriptions (grace_until) WHERE past_due;

CREATE TABLE plan_sync_pending_new (
    user_id BLOB PRIMARY KEY NOT NULL,
    event_id TEXT NOT NULL,
    token BLOB NOT NULL,
    pending_since INTEGER NOT NULL
);
INSERT INTO plan_sync_pending_new (user_id, event_id, token, pending_since)
SELECT
    user_id,
    event_id,
    token,
    CASE WHEN pending_since IS NULL THEN NULL ELSE
        CAST(strftime('%s', substr(pending_since, 1, 19) || (CASE WHEN pending_since LIKE '%Z' THEN 'Z' WHEN substr(pending_since, -6, 1) IN ('+', '-') THEN substr(pending_since, -6) ELSE '' END)) AS INTEGER) * 1000000
        + (CASE WHEN substr(pending_since, 20, 1) = '.' THEN CAST(substr(substr(pending_since, 21, length(pending_since) - 20 - (CASE WHEN pending_since LIKE '%Z' THEN 1 WHEN substr(pending_since, -6, 1) IN ('+', '-') THEN 6 ELSE 0 END)) || '000000', 1, 6) AS INTEGER) ELSE 0 END) END
FROM plan_sync_pending;
DROP TABLE plan_sync_pending;
ALTER TABLE plan_sync_pending_new RENAME TO plan_sync_pending;
CREATE INDEX plan_sync_pending_event ON plan_sync_pending (event_id);
CREATE INDEX plan_sync_pending_since ON plan_sync_pending (pending_since);
