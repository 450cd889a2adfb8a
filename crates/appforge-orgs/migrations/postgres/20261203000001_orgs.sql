-- Organizations, memberships, invitations, API keys and the audit log.
CREATE TABLE orgs (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    slug text NOT NULL UNIQUE,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL,
    seats bigint
);

CREATE TABLE org_members (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    joined_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

-- A user's orgs.
CREATE INDEX org_members_user ON org_members (user_id);

CREATE TABLE org_invitations (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    invited_by uuid NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid,
    revoked_at timestamptz,
    token_hash bytea NOT NULL UNIQUE
);

-- Counting an org's open invitations (seats).
CREATE INDEX org_invitations_org ON org_invitations (org_id, expires_at)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

CREATE TABLE org_api_keys (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    prefix text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE INDEX org_api_keys_org ON org_api_keys (org_id);

-- The audit log outlives its org (no foreign key): it is purged by retention only.
CREATE TABLE org_audit_log (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    seq bigint NOT NULL,
    time timestamptz NOT NULL,
    actor_kind text NOT NULL,
    actor_id uuid,
    action text NOT NULL,
    target text,
    ip text,
    user_agent text,
    request_id text,
    -- json, not jsonb: the text is kept as written, so the hashed content reads back exactly.
    detail json NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    UNIQUE (org_id, seq)
);

CREATE INDEX org_audit_log_time ON org_audit_log (org_id, time);
-- Retention over every org.
CREATE INDEX org_audit_log_purge ON org_audit_log (time);

-- Where each org's chain stands: appends lock this row; a deleted first or last entry shows.
CREATE TABLE org_audit_heads (
    org_id uuid PRIMARY KEY,
    first_seq bigint NOT NULL,
    last_seq bigint NOT NULL,
    last_hash bytea NOT NULL
);
