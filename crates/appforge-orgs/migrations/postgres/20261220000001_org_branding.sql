-- An org's branding: display name, primary colour (#rrggbb) and logo (re-encoded PNG, JPEG or
-- WebP bytes with their media type, SHA-256 in hex and size).
CREATE TABLE org_branding (
    org_id uuid PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    display_name text,
    primary_color text,
    logo bytea,
    logo_type text,
    logo_sha256 text,
    logo_size bigint,
    updated_at timestamptz NOT NULL
);
