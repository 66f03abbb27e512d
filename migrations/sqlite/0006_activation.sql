-- One-time activation links: the code is stored hashed; the token is generated at activation,
-- so no secret is ever stored.
CREATE TABLE activation_codes (
    code_hash BLOB NOT NULL PRIMARY KEY,
    recipient_id TEXT NOT NULL REFERENCES recipients (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    token_expires_at INTEGER,
    used_at INTEGER
);
