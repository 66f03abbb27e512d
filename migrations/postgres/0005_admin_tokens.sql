-- Tokens of administrators (admin API), stored hashed like recipient tokens.
CREATE TABLE admin_tokens (
    hash BYTEA NOT NULL PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
