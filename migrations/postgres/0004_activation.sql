-- One-time activation links: the code is stored hashed; the token is generated at activation,
-- so no secret is ever stored.
CREATE TABLE activation_codes (
    code_hash BYTEA NOT NULL PRIMARY KEY,
    recipient_id TEXT NOT NULL REFERENCES recipients (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    token_expires_at BIGINT,
    used_at BIGINT
);
