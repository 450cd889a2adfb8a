-- Uploaded reference images: metadata only, the bytes are in object storage under
-- {owner_id}/{id}.{extension}.
CREATE TABLE uploads (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    content_type text NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    width bigint NOT NULL CHECK (width > 0),
    height bigint NOT NULL CHECK (height > 0),
    sha256 text NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);

-- An owner's live uploads (usage, listing).
CREATE INDEX uploads_owner ON uploads (owner_id, created_at DESC) WHERE deleted_at IS NULL;
-- Purging after the retention period.
CREATE INDEX uploads_deleted ON uploads (deleted_at) WHERE deleted_at IS NOT NULL;
