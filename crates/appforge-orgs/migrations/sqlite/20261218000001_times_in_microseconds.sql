-- Times become microseconds since the Unix epoch (UTC), the encoding of every appforge SQLite
-- table (they were milliseconds). The audit chain's hashes cover the times, not their encoding:
-- they stay valid.
UPDATE orgs SET created_at = created_at * 1000;

UPDATE org_members SET joined_at = joined_at * 1000;

UPDATE org_invitations SET
    created_at = created_at * 1000,
    expires_at = expires_at * 1000,
    accepted_at = accepted_at * 1000,
    revoked_at = revoked_at * 1000;

UPDATE org_api_keys SET
    created_at = created_at * 1000,
    expires_at = expires_at * 1000,
    last_used_at = last_used_at * 1000,
    revoked_at = revoked_at * 1000;

UPDATE org_audit_log SET time = time * 1000;
