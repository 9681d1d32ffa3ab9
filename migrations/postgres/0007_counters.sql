-- Issue 19: counters, not counts; see migrations/sqlite/0011_counters.sql. (Numbered 0007:
-- 0006 belongs to another branch; sqlx checks versions, not an unbroken sequence.)
--
-- Here the counters are deltas: statement-level triggers append one row per (incident,
-- channel, shown status) a statement moved, and readers sum them. Appending takes no lock on
-- a shared row, so dispatcher nodes recording outcomes of one incident at once neither queue
-- behind one counter row nor deadlock over two; a statement costs one aggregate over its own
-- transition table, not a trigger call per row.
CREATE TABLE incident_notice_counts (
    incident_id bigint NOT NULL REFERENCES incidents(id),
    channel     text   NOT NULL,
    status      text   NOT NULL,
    n           bigint NOT NULL
);
CREATE INDEX incident_notice_counts_by_incident ON incident_notice_counts (incident_id);

CREATE TABLE incident_counts (
    incident_id        bigint NOT NULL REFERENCES incidents(id),
    affected_customers bigint NOT NULL DEFAULT 0,
    armed_numbers      bigint NOT NULL DEFAULT 0
);
CREATE INDEX incident_counts_by_incident ON incident_counts (incident_id);

INSERT INTO incident_notice_counts (incident_id, channel, status, n)
SELECT incident_id, channel, CASE WHEN status = 'pending' AND held THEN 'held' ELSE status END,
       COUNT(*)
  FROM notices GROUP BY 1, 2, 3;
INSERT INTO incident_counts (incident_id, affected_customers, armed_numbers)
SELECT id,
       (SELECT COUNT(*) FROM incident_customers ic WHERE ic.incident_id = incidents.id),
       (SELECT COUNT(*) FROM ivr_flags f WHERE f.incident_id = incidents.id AND f.disarmed_at IS NULL)
  FROM incidents;

CREATE FUNCTION notices_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_notice_counts (incident_id, channel, status, n)
    SELECT incident_id, channel,
           CASE WHEN status = 'pending' AND held THEN 'held' ELSE status END, COUNT(*)
      FROM new_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

CREATE FUNCTION notices_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_notice_counts (incident_id, channel, status, n)
    SELECT incident_id, channel,
           CASE WHEN status = 'pending' AND held THEN 'held' ELSE status END, -COUNT(*)
      FROM old_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END $$;

-- The net move only: a claim or a lease renewal changes no counter and appends nothing.
CREATE FUNCTION notices_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_notice_counts (incident_id, channel, status, n)
    SELECT incident_id, channel, st, SUM(k)
      FROM (SELECT incident_id, channel,
                   CASE WHEN status = 'pending' AND held THEN 'held' ELSE status END AS st,
                   -1 AS k
              FROM old_rows
            UNION ALL
            SELECT incident_id, channel,
                   CASE WHEN status = 'pending' AND held THEN 'held' ELSE status END, 1
              FROM new_rows) d
     GROUP BY 1, 2, 3 HAVING SUM(k) <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER notices_count_insert AFTER INSERT ON notices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION notices_count_insert();
CREATE TRIGGER notices_count_delete AFTER DELETE ON notices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION notices_count_delete();
CREATE TRIGGER notices_count_update AFTER UPDATE ON notices
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notices_count_update();

CREATE FUNCTION incident_customers_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_counts (incident_id, affected_customers)
    SELECT incident_id, COUNT(*) FROM new_rows GROUP BY 1;
    RETURN NULL;
END $$;

CREATE FUNCTION incident_customers_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_counts (incident_id, affected_customers)
    SELECT incident_id, -COUNT(*) FROM old_rows GROUP BY 1;
    RETURN NULL;
END $$;

CREATE TRIGGER incident_customers_count_insert AFTER INSERT ON incident_customers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION incident_customers_count_insert();
CREATE TRIGGER incident_customers_count_delete AFTER DELETE ON incident_customers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION incident_customers_count_delete();

CREATE FUNCTION ivr_flags_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_counts (incident_id, armed_numbers)
    SELECT incident_id, COUNT(*) FROM new_rows WHERE disarmed_at IS NULL GROUP BY 1;
    RETURN NULL;
END $$;

CREATE FUNCTION ivr_flags_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_counts (incident_id, armed_numbers)
    SELECT incident_id, -COUNT(*) FROM old_rows WHERE disarmed_at IS NULL GROUP BY 1;
    RETURN NULL;
END $$;

CREATE FUNCTION ivr_flags_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_counts (incident_id, armed_numbers)
    SELECT incident_id, SUM(k)
      FROM (SELECT incident_id, -1 AS k FROM old_rows WHERE disarmed_at IS NULL
            UNION ALL
            SELECT incident_id, 1 FROM new_rows WHERE disarmed_at IS NULL) d
     GROUP BY 1 HAVING SUM(k) <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER ivr_flags_count_insert AFTER INSERT ON ivr_flags
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ivr_flags_count_insert();
CREATE TRIGGER ivr_flags_count_delete AFTER DELETE ON ivr_flags
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ivr_flags_count_delete();
CREATE TRIGGER ivr_flags_count_update AFTER UPDATE ON ivr_flags
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ivr_flags_count_update();
