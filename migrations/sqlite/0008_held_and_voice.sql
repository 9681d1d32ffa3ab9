-- no-transaction
-- Issue 21: the voice channel, and issue 13's `held` mark.
--
-- Voice: notices and opt-outs take the channel 'voice' (a call to a landline). SQLite cannot
-- change a CHECK constraint in place, so both tables are rebuilt (create new, copy, drop,
-- rename), with what refers to them recreated: the notices' indexes and the early-receipt
-- trigger of 0005 (sqlite_master lists nothing else). Foreign keys are off for the rebuild
-- (notice_customers refers to notices by name: dropping the old table must not check or
-- cascade, and after the rename the name is the new table's), which a transaction cannot
-- switch, hence `no-transaction` and the explicit one inside.
--
-- Held: a notice that cannot go out now: its channel's circuit is open (the provider refuses
-- this node's credentials, does not know the account, cannot be reached) or the channel is not
-- configured on the node that runs the dispatcher. It stays `pending` (so claims, follow-ups
-- and withdrawals treat it as every waiting notice) with the `held` mark, and reads as `held`;
-- the reason is its last_error. Any attempt's outcome clears the mark, and so does the
-- dispatcher once the cause is gone (the circuit closes, the channel is configured).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
-- The trigger reads opt_outs: it goes first and comes back last.
DROP TRIGGER notices_apply_early_receipt;

CREATE TABLE opt_outs_new (
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email', 'voice')),
    address TEXT NOT NULL,
    at      TEXT NOT NULL,
    source  TEXT NOT NULL,
    PRIMARY KEY (channel, address)
) WITHOUT ROWID;
INSERT INTO opt_outs_new (channel, address, at, source)
SELECT channel, address, at, source FROM opt_outs;
DROP TABLE opt_outs;
ALTER TABLE opt_outs_new RENAME TO opt_outs;

CREATE TABLE notices_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      INTEGER NOT NULL REFERENCES incidents(id),
    event_id         INTEGER NOT NULL REFERENCES incident_events(id),
    channel          TEXT    NOT NULL CHECK (channel IN ('sms', 'email', 'voice')),
    address          TEXT    NOT NULL,
    language         TEXT    NOT NULL,
    priority         INTEGER NOT NULL CHECK (priority IN (0, 1)),
    subject          TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'delivered', 'failed', 'superseded')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    not_before       TEXT,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    provider_id      TEXT,
    last_error       TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    in_doubt         INTEGER NOT NULL DEFAULT 0,
    segments         INTEGER,
    sent_at          TEXT,
    delivered_at     TEXT,
    possible_duplicate INTEGER NOT NULL DEFAULT 0,
    held             INTEGER NOT NULL DEFAULT 0,
    UNIQUE (incident_id, event_id, channel, address)
);
INSERT INTO notices_new (id, incident_id, event_id, channel, address, language, priority,
                         subject, body, status, attempts, not_before, lease_owner,
                         lease_expires_at, provider_id, last_error, created_at, updated_at,
                         in_doubt, segments, sent_at, delivered_at, possible_duplicate)
SELECT id, incident_id, event_id, channel, address, language, priority,
       subject, body, status, attempts, not_before, lease_owner,
       lease_expires_at, provider_id, last_error, created_at, updated_at,
       in_doubt, segments, sent_at, delivered_at, possible_duplicate
  FROM notices;
DROP TABLE notices;
ALTER TABLE notices_new RENAME TO notices;
CREATE INDEX notices_due ON notices (priority DESC, id) WHERE status = 'pending';
CREATE INDEX notices_by_incident ON notices (incident_id, status);
CREATE INDEX notices_by_provider_id ON notices (provider_id) WHERE provider_id IS NOT NULL;
-- As in 0005_receipts.sql.
CREATE TRIGGER notices_apply_early_receipt
AFTER UPDATE OF provider_id ON notices
WHEN NEW.provider_id IS NOT NULL
 AND NEW.status = 'sent'
 AND NEW.channel = 'sms'
 AND EXISTS (SELECT 1 FROM early_receipts r WHERE r.provider_id = NEW.provider_id)
BEGIN
    UPDATE notices
       SET status = (SELECT r.status FROM early_receipts r WHERE r.provider_id = NEW.provider_id),
           delivered_at = (SELECT CASE r.status WHEN 'delivered' THEN r.at END
                             FROM early_receipts r WHERE r.provider_id = NEW.provider_id),
           last_error = COALESCE((SELECT r.reason FROM early_receipts r
                                   WHERE r.provider_id = NEW.provider_id AND r.status = 'failed'),
                                 NEW.last_error)
     WHERE id = NEW.id;

    INSERT OR IGNORE INTO notices (incident_id, event_id, channel, address, language, priority,
                                   subject, body, created_at, updated_at)
    SELECT DISTINCT NEW.incident_id, NEW.event_id, 'email', c.value, NEW.language, NEW.priority,
           NEW.subject, NEW.body, NEW.updated_at, NEW.updated_at
      FROM notice_customers nc
      JOIN contacts c ON c.customer_id = nc.customer_id AND c.medium = 'email'
     WHERE nc.notice_id = NEW.id
       AND EXISTS (SELECT 1 FROM early_receipts r
                    WHERE r.provider_id = NEW.provider_id AND r.status = 'failed')
       AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = 'email' AND o.address = c.value);

    DELETE FROM early_receipts WHERE provider_id = NEW.provider_id;
END;



COMMIT;
PRAGMA foreign_keys = ON;
