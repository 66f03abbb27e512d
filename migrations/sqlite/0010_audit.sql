-- Tamper-evident audit log: one hash chain per writer (a serving process), append-only.
CREATE TABLE audit_events (
    writer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
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
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    at INTEGER NOT NULL,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (writer, seq)
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
