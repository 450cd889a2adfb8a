-- Per-organization OpenID Connect settings and the logins waiting for their callback. Times
-- are microseconds since the epoch (UTC); ids are 16-byte blobs; the client secret is sealed
-- (AES-256-GCM, `v1.` and base64), never in clear.
CREATE TABLE sso_configs (
    org_id BLOB PRIMARY KEY NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT NOT NULL,
    client_secret_sealed TEXT NOT NULL,
    -- A JSON array of lowercase domains.
    allowed_domains TEXT NOT NULL,
    default_role TEXT NOT NULL CHECK (default_role IN ('viewer', 'member', 'admin', 'owner')),
    enforce_domain INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sso_pending_logins (
    state TEXT PRIMARY KEY NOT NULL,
    org_id BLOB NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- The purge of expired logins.
CREATE INDEX sso_pending_logins_expires ON sso_pending_logins (expires_at);
