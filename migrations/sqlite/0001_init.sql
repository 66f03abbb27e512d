-- Lakeshare state store, version 1.
CREATE TABLE shares (
    name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    id TEXT NOT NULL,
    position INTEGER NOT NULL
);

CREATE TABLE schemas (
    share TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    position INTEGER NOT NULL,
    PRIMARY KEY (share, name)
);

CREATE TABLE shared_tables (
    share TEXT NOT NULL COLLATE NOCASE,
    schema_name TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE,
    id TEXT NOT NULL UNIQUE,
    location TEXT NOT NULL,
    history_shared INTEGER NOT NULL,
    start_version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (share, schema_name, name)
);

CREATE TABLE recipients (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE tokens (
    hash BLOB NOT NULL PRIMARY KEY,
    recipient_id TEXT NOT NULL REFERENCES recipients (id),
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);

CREATE TABLE grants (
    recipient_id TEXT NOT NULL REFERENCES recipients (id),
    share TEXT NOT NULL COLLATE NOCASE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (recipient_id, share)
);

CREATE TABLE signing_keys (
    id TEXT NOT NULL PRIMARY KEY,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
