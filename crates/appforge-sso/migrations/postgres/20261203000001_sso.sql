-- Per-organization OpenID Connect settings and the logins waiting for their callback. The
-- client secret is sealed (AES-256-GCM, `v1.` and base64), never in clear.
CREATE TABLE sso_configs (
    org_id uuid PRIMARY KEY,
    issuer text NOT NULL,
    client_id text NOT NULL,
    client_secret_sealed text NOT NULL,
    allowed_domains text[] NOT NULL,
    default_role text NOT NULL CHECK (default_role IN ('viewer', 'member', 'admin', 'owner')),
    enforce_domain boolean NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE sso_pending_logins (
    state text PRIMARY KEY,
    org_id uuid NOT NULL,
    nonce text NOT NULL,
    pkce_verifier text NOT NULL,
    redirect_uri text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- The purge of expired logins.
CREATE INDEX sso_pending_logins_expires ON sso_pending_logins (expires_at);
