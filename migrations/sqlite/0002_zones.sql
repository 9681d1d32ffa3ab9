-- Ingest (issue 3): named zones, where an incident's area came from, and CAP alerts.

-- Named zones: district metered areas, pressure zones, feeder service areas. `name_key` is
-- the name lower-cased (names match without regard to case); `area` is the core's Area as
-- JSON; `properties` the feature's GeoJSON properties as imported.
CREATE TABLE zones (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL UNIQUE,
    area        TEXT NOT NULL,
    properties  TEXT NOT NULL DEFAULT '{}',
    source      TEXT NOT NULL,
    imported_at TEXT NOT NULL
);

-- How the area was given ("zone DMA 7", "address Kaivokatu 1, Helsinki", "CAP HSY-42"), and
-- the CAP fields kept on the incident (NULL when it was not declared from CAP).
ALTER TABLE incidents ADD COLUMN area_source TEXT;
ALTER TABLE incidents ADD COLUMN urgency TEXT;
ALTER TABLE incidents ADD COLUMN certainty TEXT;
ALTER TABLE incidents ADD COLUMN headline TEXT;
ALTER TABLE incidents ADD COLUMN description TEXT;

-- Every CAP message applied to an incident. An Update or Cancel names earlier messages in
-- its `references` (sender,identifier,sent triples): any of them leads to the incident. The
-- UNIQUE key makes a message delivered twice (feeds repeat) unable to act twice.
CREATE TABLE cap_messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sender      TEXT    NOT NULL,
    identifier  TEXT    NOT NULL,
    sent        TEXT    NOT NULL,
    msg_type    TEXT    NOT NULL CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    refs        TEXT    NOT NULL DEFAULT '',
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    event_id    INTEGER REFERENCES incident_events(id), -- NULL: recorded, nobody told
    received_at TEXT    NOT NULL,
    UNIQUE (sender, identifier)
);
CREATE INDEX cap_messages_by_incident ON cap_messages (incident_id);
