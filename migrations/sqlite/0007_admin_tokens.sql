-- Tokens of administrators (admin API), stored hashed like recipient tokens.
CREATE TABLE admin_tokens (
    hash BLOB NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
