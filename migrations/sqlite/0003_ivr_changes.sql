-- IVR change log. A running server keeps its in-memory caller index current by polling this
-- table for ids above the last one it applied, so it sees changes made by any process (an
-- operator's CLI next to `outagecast serve`) without anyone having to tell it. Triggers fill
-- it, so no write path can forget to: declare, update, restore, cancel, re-arming after a
-- customer import, or anything added later.
--
-- SQLite has one writer at a time and AUTOINCREMENT ids are handed out inside the writing
-- transaction, so ids become visible in increasing order: a reader that has applied every id
-- up to N never later finds a smaller one committed.
CREATE TABLE ivr_changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL,
    -- The caller number (E.164) whose flag changed; NULL when the incident itself changed
    -- (status, severity, ETR, expiry), which means "reload everything about it".
    phone       TEXT,
    -- Fixed-width UTC text like every other time in the database, for pruning by age.
    at          TEXT    NOT NULL DEFAULT (
        strftime('%Y-%m-%dT%H:%M:%S', 'now') || substr(strftime('%f', 'now'), 3) || '000Z'
    )
);
CREATE INDEX ivr_changes_by_age ON ivr_changes (at);

-- The highest id ever pruned from the log. A reader whose last applied id is below it has
-- missed changes and must reload everything.
CREATE TABLE ivr_changes_pruned (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    upto      INTEGER NOT NULL
);
INSERT INTO ivr_changes_pruned (singleton, upto) VALUES (1, 0);

CREATE TRIGGER ivr_changes_incident_insert AFTER INSERT ON incidents
BEGIN
    INSERT INTO ivr_changes (incident_id, phone) VALUES (NEW.id, NULL);
END;

-- Only the columns the IVR reads: other columns may be added to incidents later without
-- making every server reload the incident.
CREATE TRIGGER ivr_changes_incident_update
AFTER UPDATE OF status, kind, severity, etr, expires_at, declared_at, updated_at ON incidents
BEGIN
    INSERT INTO ivr_changes (incident_id, phone) VALUES (NEW.id, NULL);
END;

CREATE TRIGGER ivr_changes_flag_insert AFTER INSERT ON ivr_flags
BEGIN
    INSERT INTO ivr_changes (incident_id, phone) VALUES (NEW.incident_id, NEW.phone);
END;

CREATE TRIGGER ivr_changes_flag_update AFTER UPDATE ON ivr_flags
BEGIN
    INSERT INTO ivr_changes (incident_id, phone) VALUES (NEW.incident_id, NEW.phone);
    -- A changed key moves the flag: the old (phone, incident) must be re-read too.
    INSERT INTO ivr_changes (incident_id, phone)
        SELECT OLD.incident_id, OLD.phone
        WHERE OLD.phone IS NOT NEW.phone OR OLD.incident_id IS NOT NEW.incident_id;
END;

CREATE TRIGGER ivr_changes_flag_delete AFTER DELETE ON ivr_flags
BEGIN
    INSERT INTO ivr_changes (incident_id, phone) VALUES (OLD.incident_id, OLD.phone);
END;
