-- Organizations, memberships, invitations, API keys and the audit log. Times are
-- milliseconds since the epoch; hashes are 32-byte blobs; JSON is text.
CREATE TABLE orgs (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    created_by BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    seats INTEGER
);

CREATE TABLE org_members (
    org_id BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id BLOB NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

-- A user's orgs.
CREATE INDEX org_members_user ON org_members (user_id);

CREATE TABLE org_invitations (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    invited_by BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    accepted_at INTEGER,
    accepted_by BLOB,
    revoked_at INTEGER,
    token_hash BLOB NOT NULL UNIQUE
);

-- Counting an org's open invitations (seats).
CREATE INDEX org_invitations_org ON org_invitations (org_id, expires_at)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

CREATE TABLE org_api_keys (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    prefix TEXT NOT NULL UNIQUE,
    secret_hash BLOB NOT NULL,
    created_by BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
);

CREATE INDEX org_api_keys_org ON org_api_keys (org_id);

-- The audit log outlives its org (no foreign key): it is purged by retention only.
CREATE TABLE org_audit_log (
    id BLOB PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    time INTEGER NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id BLOB,
    action TEXT NOT NULL,
    target TEXT,
    ip TEXT,
    user_agent TEXT,
    request_id TEXT,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    UNIQUE (org_id, seq)
);

CREATE INDEX org_audit_log_time ON org_audit_log (org_id, time);
-- Retention over every org.
CREATE INDEX org_audit_log_purge ON org_audit_log (time);

-- Where each org's chain stands: appends lock this row; a deleted first or last entry shows.
CREATE TABLE org_audit_heads (
    org_id BLOB PRIMARY KEY NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
