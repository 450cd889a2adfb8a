-- The uploads (reference images) a version's generation attached: a JSON array of upload ids,
-- kept with the version so that they outlive the job. Versions stored before have none.
ALTER TABLE app_versions ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
