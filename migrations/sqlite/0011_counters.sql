-- Issue 19: counters, not counts. Listings, the progress stream and /metrics read these
-- per-incident counters instead of counting notices, so they cost O(incidents) however many
-- notices there are. Triggers keep them in the very transaction that changes a notice, an
-- affected customer or an IVR flag, so no script can forget one and a rollback undoes both.
-- `status` is the shown status (ops::outbox::SHOWN_STATUS: a held pending notice is 'held').
-- Rows may reach n = 0; readers skip them. (Numbered 0011: 0010 belongs to another branch, and
-- sqlx orders and checks migrations by version, not by an unbroken sequence.)
CREATE TABLE incident_notice_counts (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    channel     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (incident_id, channel, status)
) WITHOUT ROWID;

CREATE TABLE incident_counts (
    incident_id        INTEGER NOT NULL REFERENCES incidents(id),
    affected_customers INTEGER NOT NULL DEFAULT 0,
    armed_numbers      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (incident_id)
) WITHOUT ROWID;

-- Backfill from the rows already there.
INSERT INTO incident_notice_counts (incident_id, channel, status, n)
SELECT incident_id, channel, CASE WHEN status = 'pending' AND held THEN 'held' ELSE status END,
       COUNT(*)
  FROM notices GROUP BY 1, 2, 3;
INSERT INTO incident_counts (incident_id, affected_customers, armed_numbers)
SELECT id,
       (SELECT COUNT(*) FROM incident_customers ic WHERE ic.incident_id = incidents.id),
       (SELECT COUNT(*) FROM ivr_flags f WHERE f.incident_id = incidents.id AND f.disarmed_at IS NULL)
  FROM incidents;

CREATE TRIGGER notices_count_insert AFTER INSERT ON notices
BEGIN
    INSERT INTO incident_notice_counts (incident_id, channel, status, n)
    VALUES (NEW.incident_id, NEW.channel,
            CASE WHEN NEW.status = 'pending' AND NEW.held THEN 'held' ELSE NEW.status END, 1)
    ON CONFLICT (incident_id, channel, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER notices_count_delete AFTER DELETE ON notices
BEGIN
    UPDATE incident_notice_counts SET n = n - 1
     WHERE incident_id = OLD.incident_id AND channel = OLD.channel
       AND status = CASE WHEN OLD.status = 'pending' AND OLD.held THEN 'held' ELSE OLD.status END;
END;

-- Only updates that move a notice between counters (a claim or a lease renewal does not).
CREATE TRIGGER notices_count_update AFTER UPDATE OF incident_id, channel, status, held ON notices
WHEN OLD.incident_id IS NOT NEW.incident_id OR OLD.channel IS NOT NEW.channel
  OR (CASE WHEN OLD.status = 'pending' AND OLD.held THEN 'held' ELSE OLD.status END)
     IS NOT (CASE WHEN NEW.status = 'pending' AND NEW.held THEN 'held' ELSE NEW.status END)
BEGIN
    UPDATE incident_notice_counts SET n = n - 1
     WHERE incident_id = OLD.incident_id AND channel = OLD.channel
       AND status = CASE WHEN OLD.status = 'pending' AND OLD.held THEN 'held' ELSE OLD.status END;
    INSERT INTO incident_notice_counts (incident_id, channel, status, n)
    VALUES (NEW.incident_id, NEW.channel,
            CASE WHEN NEW.status = 'pending' AND NEW.held THEN 'held' ELSE NEW.status END, 1)
    ON CONFLICT (incident_id, channel, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER incident_customers_count_insert AFTER INSERT ON incident_customers
BEGIN
    INSERT INTO incident_counts (incident_id, affected_customers) VALUES (NEW.incident_id, 1)
    ON CONFLICT (incident_id) DO UPDATE SET affected_customers = affected_customers + 1;
END;

CREATE TRIGGER incident_customers_count_delete AFTER DELETE ON incident_customers
BEGIN
    UPDATE incident_counts SET affected_customers = affected_customers - 1
     WHERE incident_id = OLD.incident_id;
END;

CREATE TRIGGER ivr_flags_count_insert AFTER INSERT ON ivr_flags
WHEN NEW.disarmed_at IS NULL
BEGIN
    INSERT INTO incident_counts (incident_id, armed_numbers) VALUES (NEW.incident_id, 1)
    ON CONFLICT (incident_id) DO UPDATE SET armed_numbers = armed_numbers + 1;
END;

CREATE TRIGGER ivr_flags_count_delete AFTER DELETE ON ivr_flags
WHEN OLD.disarmed_at IS NULL
BEGIN
    UPDATE incident_counts SET armed_numbers = armed_numbers - 1
     WHERE incident_id = OLD.incident_id;
END;

CREATE TRIGGER ivr_flags_count_update AFTER UPDATE OF incident_id, disarmed_at ON ivr_flags
WHEN OLD.incident_id IS NOT NEW.incident_id
  OR (OLD.disarmed_at IS NULL) IS NOT (NEW.disarmed_at IS NULL)
BEGIN
    UPDATE incident_counts SET armed_numbers = armed_numbers - 1
     WHERE incident_id = OLD.incident_id AND OLD.disarmed_at IS NULL;
    INSERT INTO incident_counts (incident_id, armed_numbers)
    SELECT NEW.incident_id, 1 WHERE NEW.disarmed_at IS NULL
    ON CONFLICT (incident_id) DO UPDATE SET armed_numbers = armed_numbers + 1;
END;
