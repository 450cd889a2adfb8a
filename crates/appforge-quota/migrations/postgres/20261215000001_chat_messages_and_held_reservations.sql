-- Chat messages are counted per day apart from generations; a reservation says what it holds
-- and, once held by a job, which job (it then never expires); plans gain their chat limit,
-- their running-job cap and their request limits.

ALTER TABLE usage_quotas ADD COLUMN IF NOT EXISTS daily_chat_messages BIGINT NOT NULL DEFAULT 0
    CHECK (daily_chat_messages >= 0);

ALTER TABLE quota_reservations ADD COLUMN IF NOT EXISTS resource TEXT NOT NULL DEFAULT 'generation';
ALTER TABLE quota_reservations ADD COLUMN IF NOT EXISTS holder UUID;   -- the job holding it, once held

CREATE INDEX IF NOT EXISTS quota_reservations_held
    ON quota_reservations (id) WHERE settled_at IS NULL AND holder IS NOT NULL;

ALTER TABLE pricing_plans ADD COLUMN IF NOT EXISTS daily_chat_limit INTEGER;   -- NULL = unlimited
ALTER TABLE pricing_plans ADD COLUMN IF NOT EXISTS max_running_jobs INTEGER;   -- NULL = no cap
ALTER TABLE pricing_plans ADD COLUMN IF NOT EXISTS request_limits JSONB;       -- NULL = defaults

-- Plans stored before this migration get the built-in values of the new fields.
UPDATE pricing_plans SET daily_chat_limit = 20, max_running_jobs = 1,
    request_limits = '{"history_messages":20,"history_bytes":65536,"app_files":200,"app_bytes":524288,"phase_context_bytes":16384,"output_tokens":8000}'
    WHERE id = 'free';
UPDATE pricing_plans SET daily_chat_limit = 500, max_running_jobs = 2 WHERE id = 'pro';
UPDATE pricing_plans SET max_running_jobs = 3,
    request_limits = '{"history_messages":100,"history_bytes":524288,"app_files":1000,"app_bytes":2097152,"phase_context_bytes":131072,"output_tokens":16000}'
    WHERE id = 'team';
