-- An org's branding: display name, primary colour (#rrggbb) and logo (re-encoded PNG, JPEG or
-- WebP bytes with their media type, SHA-256 in hex and size). Times are microseconds.
CREATE TABLE org_branding (
    org_id BLOB PRIMARY KEY NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    display_name TEXT,
    primary_color TEXT,
    logo BLOB,
    logo_type TEXT,
    logo_sha256 TEXT,
    logo_size INTEGER,
    updated_at INTEGER NOT NULL
);
