-- Outage reports from customers ("OUT", "VIKA", "FEL" by SMS) received while no open incident
-- covers their number, so a cluster of reports is visible before anyone declares. One row per
-- number and report: a repeat within the dedupe window (store::ops::outage_reports) counts in
-- `repeats` and moves `last_at` instead of adding a row. `current` marks the one row per number
-- that repeats may still join; `accounts` is the number's accounts with their locations when it
-- was reported (a JSON array of {account_id, lon, lat}; empty for an unknown number). Kept 90
-- days.
CREATE TABLE outage_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT    NOT NULL,
    last_at     TEXT    NOT NULL,
    phone       TEXT    NOT NULL,
    channel     TEXT    NOT NULL CHECK (channel IN ('sms', 'voice')),
    accounts    TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    repeats     INTEGER NOT NULL DEFAULT 0 CHECK (repeats >= 0),
    current     INTEGER NOT NULL DEFAULT 1 CHECK (current IN (0, 1))
);
CREATE UNIQUE INDEX outage_reports_current ON outage_reports (phone) WHERE current = 1;
CREATE INDEX outage_reports_by_time ON outage_reports (last_at);
