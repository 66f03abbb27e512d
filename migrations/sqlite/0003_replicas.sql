-- At most one current signing key (replicas bootstrapping at once cannot both add one), and
-- async query state shared by replicas.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

CREATE TABLE async_queries (
    id TEXT NOT NULL PRIMARY KEY,
    recipient_id TEXT NOT NULL,
    table_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    body BLOB NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    submitted_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE UNIQUE INDEX async_queries_key ON async_queries (recipient_id, idempotency_key);
