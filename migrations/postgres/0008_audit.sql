-- Tamper-evident audit log: one hash chain per writer (a serving process), append-only.
CREATE TABLE audit_events (
    writer TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    recipient TEXT,
    share_name TEXT,
    table_name TEXT,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (writer, seq)
);
CREATE INDEX audit_events_at ON audit_events (at);

-- Signed checkpoints over chain heads (Ed25519; the key is not in this database).
CREATE TABLE audit_checkpoints (
    writer TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (writer, seq)
);

-- Append-only for every role but a superuser disabling triggers: UPDATE and DELETE raise.
CREATE FUNCTION lakeshare_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION lakeshare_audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION lakeshare_audit_append_only();
-- The serving role needs only INSERT and SELECT.
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_checkpoints FROM PUBLIC;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION lakeshare_audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION lakeshare_audit_append_only();
