-- API tokens; a counter that tells a running server its customer index is stale; indexes for
-- reading the audit log by actor or subject.

-- API tokens. Only the SHA-256 (hex) of a token's text is kept: the text is shown once, at
-- creation. `name` is how operators refer to a token (revoke, audit entries); a revoked token
-- keeps its row (and its name) so the audit log still says whose it was.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer', 'ivr', 'webhook')),
    hash         TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    -- Updated at most once a minute per token, not on every request.
    last_used_at TEXT,
    revoked_at   TEXT
);

-- Small counters shared by every process on the database.
--   customers_generation: bumped in every transaction that inserts, changes or deletes
--   customers. A long-running server compares it with the value its in-memory R-tree was
--   built at, and rebuilds before selecting when they differ (e.g. after a CLI import).
CREATE TABLE meta (
    key   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('customers_generation', 0);

-- The audit log is read a page at a time, newest first, optionally for one actor or one
-- subject (`incident:12`, or every `token:...`); see `audit_page`.
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_subject ON audit_log (subject, id);
