-- Chat messages are counted per day apart from generations; a reservation says what it holds
-- and, once held by a job, which job (it then never expires); plans gain their chat limit,
-- their running-job cap and their request limits.

ALTER TABLE usage_quotas ADD COLUMN daily_chat_messages INTEGER NOT NULL DEFAULT 0;

ALTER TABLE quota_reservations ADD COLUMN resource TEXT NOT NULL DEFAULT 'generation';
ALTER TABLE quota_reservations ADD COLUMN holder BLOB;   -- the job holding it, once held

CREATE INDEX IF NOT EXISTS quota_reservations_held
    ON quota_reservations (id) WHERE state = 'pending' AND holder IS NOT NULL;

ALTER TABLE pricing_plans ADD COLUMN daily_chat_limit INTEGER;   -- chat messages a day, NULL = unlimited
ALTER TABLE pricing_plans ADD COLUMN max_running_jobs INTEGER;   -- NULL = no cap
ALTER TABLE pricing_plans ADD COLUMN request_limits TEXT;        -- JSON object, NULL = defaults

-- Plans stored before this migration get the built-in values of the new fields.
UPDATE pricing_plans SET daily_chat_limit = 20, max_running_jobs = 1,
    request_limits = '{"history_messages":20,"history_bytes":65536,"app_files":200,"app_bytes":524288,"phase_context_bytes":16384,"output_tokens":8000}'
    WHERE id = 'free';
UPDATE pricing_plans SET daily_chat_limit = 500, max_running_jobs = 2 WHERE id = 'pro';
UPDATE pricing_plans SET max_running_jobs = 3,
    request_limits = '{"history_messages":100,"history_bytes":524288,"app_files":1000,"app_bytes":2097152,"phase_context_bytes":131072,"output_tokens":16000}'
    WHERE id = 'team';
