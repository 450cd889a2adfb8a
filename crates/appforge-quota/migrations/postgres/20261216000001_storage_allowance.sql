-- Plans gain their storage allowance for uploads (reference images), pooled per owner.
ALTER TABLE pricing_plans ADD COLUMN storage_limit_bytes BIGINT;    -- NULL = unlimited

-- Plans stored before this migration get the built-in values.
UPDATE pricing_plans SET storage_limit_bytes = 52428800 WHERE id = 'free';      -- 50 MB
UPDATE pricing_plans SET storage_limit_bytes = 2147483648 WHERE id = 'pro';     -- 2 GB
UPDATE pricing_plans SET storage_limit_bytes = 21474836480 WHERE id = 'team';   -- 20 GB
