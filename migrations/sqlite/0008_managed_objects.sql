-- Shares and tables managed through the admin API, `lakeshare apply` and the config file.
-- `origin` says who owns a share: 'config' shares are reconciled with the config file at start
-- (and removed when the file no longer declares them); 'api' and 'apply' shares are left alone.
ALTER TABLE shares ADD COLUMN comment TEXT;
ALTER TABLE shares ADD COLUMN origin TEXT NOT NULL DEFAULT 'config';
ALTER TABLE shares ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shares ADD COLUMN created_by TEXT NOT NULL DEFAULT 'system';
ALTER TABLE shared_tables ADD COLUMN source_name TEXT;
ALTER TABLE shared_tables ADD COLUMN added_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE shared_tables ADD COLUMN added_by TEXT NOT NULL DEFAULT 'system';

-- Tables registered by location (Unity's `POST /tables`), referenced by `catalog.schema.table`
-- when they are added to a share.
CREATE TABLE registered_tables (
    full_name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    location TEXT NOT NULL,
    comment TEXT,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
