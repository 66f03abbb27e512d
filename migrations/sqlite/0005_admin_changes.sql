-- Who changed what and when (the seam the audit log builds on). Written in the same
-- transaction as the change; never holds a secret (token prefixes only).
CREATE TABLE admin_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
