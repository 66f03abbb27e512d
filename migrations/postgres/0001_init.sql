-- Lakeshare state store on PostgreSQL, version 1 (same model as migrations/sqlite).
-- Names are matched case-insensitively through lower() indexes.
CREATE TABLE shares (
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE UNIQUE INDEX shares_name ON shares (lower(name));

CREATE TABLE schemas (
    share TEXT NOT NULL,
    name TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE UNIQUE INDEX schemas_name ON schemas (lower(share), lower(name));

CREATE TABLE shared_tables (
    share TEXT NOT NULL,
    schema_name TEXT NOT NULL,
    name TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    location TEXT NOT NULL,
    history_shared BIGINT NOT NULL,
    start_version BIGINT NOT NULL,
    position BIGINT NOT NULL,
    partition_filter TEXT
);
CREATE UNIQUE INDEX shared_tables_name ON shared_tables (lower(share), lower(schema_name), lower(name));

CREATE TABLE recipients (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    comment TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    ip_access_list TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX recipients_name ON recipients (lower(name));

CREATE TABLE tokens (
    hash BYTEA NOT NULL PRIMARY KEY,
    recipient_id TEXT NOT NULL REFERENCES recipients (id),
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

CREATE TABLE grants (
    recipient_id TEXT NOT NULL REFERENCES recipients (id),
    share TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT
);
CREATE UNIQUE INDEX grants_key ON grants (recipient_id, lower(share));

CREATE TABLE signing_keys (
    id TEXT NOT NULL PRIMARY KEY,
    secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
