-- Uploaded reference images: metadata only, the bytes are in object storage under
-- {owner_id}/{id}.{extension}. Times are milliseconds since the epoch.
CREATE TABLE uploads (
    id BLOB PRIMARY KEY NOT NULL,
    owner_id BLOB NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    sha256 TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);

-- An owner's live uploads (usage, listing).
CREATE INDEX uploads_owner ON uploads (owner_id, created_at DESC) WHERE deleted_at IS NULL;
-- Purging after the retention period.
CREATE INDEX uploads_deleted ON uploads (deleted_at) WHERE deleted_at IS NOT NULL;
