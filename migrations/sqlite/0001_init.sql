-- outagecast schema, SQLite. Times are RFC 3339 text in UTC (sqlx's chrono encoding), so they
-- sort and compare as text.

-- Customers: one row per utility account; `id` is the dense key of the spatial index.
CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    account_id  TEXT    NOT NULL UNIQUE,
    lon         REAL    NOT NULL CHECK (lon BETWEEN -180 AND 180),
    lat         REAL    NOT NULL CHECK (lat BETWEEN -90 AND 90),
    address     TEXT    NOT NULL,
    language    TEXT    NOT NULL CHECK (language IN ('fi', 'sv', 'en')),
    priority    INTEGER NOT NULL CHECK (priority IN (0, 1)),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

-- Contacts of a customer: phones (E.164, with kind) and emails, in the order given.
CREATE TABLE contacts (
    customer_id INTEGER NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    medium      TEXT    NOT NULL CHECK (medium IN ('phone', 'email')),
    value       TEXT    NOT NULL,
    kind        TEXT    CHECK (kind IN ('mobile', 'landline')),
    position    INTEGER NOT NULL,
    PRIMARY KEY (customer_id, medium, value)
);
CREATE INDEX contacts_by_value ON contacts (value);

-- Incidents and their current state; `area` is the core's Area as JSON.
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reference   TEXT,
    kind        TEXT    NOT NULL,
    severity    TEXT    NOT NULL,
    cause       TEXT    NOT NULL,
    etr         TEXT,
    area        TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('declared', 'updated', 'restored', 'cancelled')),
    expires_at  TEXT,
    declared_at TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    declared_by TEXT    NOT NULL
);
CREATE INDEX incidents_by_status ON incidents (status);

-- Every transition of an incident; notices are planned per event.
CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('declared', 'updated', 'restored', 'cancelled')),
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    details     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_by_incident ON incident_events (incident_id);

-- The affected set as selected at declaration: what was targeted, for reports and for
-- telling only the newly affected when an area grows.
CREATE TABLE incident_customers (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    customer_id INTEGER NOT NULL,
    PRIMARY KEY (incident_id, customer_id)
) WITHOUT ROWID;

-- The outbox. The UNIQUE key is the notice's identity: it is what makes re-runs and crash
-- recovery unable to send twice.
CREATE TABLE notices (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      INTEGER NOT NULL REFERENCES incidents(id),
    event_id         INTEGER NOT NULL REFERENCES incident_events(id),
    channel          TEXT    NOT NULL CHECK (channel IN ('sms', 'email')),
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
    UNIQUE (incident_id, event_id, channel, address)
);
-- What a dispatcher claims next: priority first, then oldest.
CREATE INDEX notices_due ON notices (priority DESC, id) WHERE status = 'pending';
CREATE INDEX notices_by_incident ON notices (incident_id, status);

-- Which accounts led to a notice (a phone on several accounts is one notice).
CREATE TABLE notice_customers (
    notice_id   INTEGER NOT NULL REFERENCES notices(id),
    customer_id INTEGER NOT NULL,
    PRIMARY KEY (notice_id, customer_id)
) WITHOUT ROWID;

-- IVR flags: caller number -> armed incident, with the announcement in the caller's language.
CREATE TABLE ivr_flags (
    phone        TEXT    NOT NULL,
    incident_id  INTEGER NOT NULL REFERENCES incidents(id),
    language     TEXT    NOT NULL,
    announcement TEXT    NOT NULL,
    armed_at     TEXT    NOT NULL,
    disarmed_at  TEXT,
    PRIMARY KEY (phone, incident_id)
) WITHOUT ROWID;
CREATE INDEX ivr_flags_by_incident ON ivr_flags (incident_id);

-- Opt-outs, keyed by contact (not by account) so they survive customer re-imports.
CREATE TABLE opt_outs (
    channel TEXT NOT NULL CHECK (channel IN ('sms', 'email')),
    address TEXT NOT NULL,
    at      TEXT NOT NULL,
    source  TEXT NOT NULL,
    PRIMARY KEY (channel, address)
) WITHOUT ROWID;

-- Every operator action: who, what, when, and a JSON summary.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
