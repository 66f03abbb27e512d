-- Governance: recipient properties and IP allow lists, grant expiry, per-table partition filters.
ALTER TABLE recipients ADD COLUMN comment TEXT;
ALTER TABLE recipients ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';
ALTER TABLE recipients ADD COLUMN ip_access_list TEXT NOT NULL DEFAULT '[]';
ALTER TABLE grants ADD COLUMN expires_at INTEGER;
ALTER TABLE shared_tables ADD COLUMN partition_filter TEXT;
