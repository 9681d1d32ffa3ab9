-- IVR change log in commit order, and change notifications.
--
-- Under SQLite's single writer, ivr_changes ids become visible in id order, so a follower
-- can poll "every id after N". Here ids come from a sequence when a row is written, and
-- transactions commit in any order: a poll could see id 12 while id 11 is still being
-- written, move past 11 and never see it. So the follower's cursor is not a change id but a
-- COMMIT number, handed out in the order the writing transactions commit:
--
--   * every change row records the transaction that wrote it (`xid`);
--   * the first change of a transaction registers it in `ivr_commits` (seq still NULL);
--   * when that transaction commits, a deferred trigger takes `ivr_commit_lock` and stamps
--     its `seq` from a sequence. The lock is held until the commit is visible to everyone,
--     so seq values become visible in increasing order: a reader that sees commit N also
--     sees every commit below N (or knows it rolled back, leaving a gap).
--
-- Writers still run in parallel; only the last step of committing a transaction that
-- changed IVR data (stamp + commit) is serialised. Nothing waits for unrelated
-- transactions, and a change is visible to pollers as soon as it commits. The stamp must
-- stay the last thing a transaction does before committing (no other deferred trigger that
-- could wait for a row lock after it), or two committers could wait for each other.
--
-- A follower polls `ivr_commits` for seq above its cursor and re-reads what the changes of
-- those commits name; the pruned mark (`ivr_changes_pruned.upto`) is a commit number too.

-- The writing transaction (pg_current_xact_id, 64 bits, never wraps).
ALTER TABLE ivr_changes
    ADD COLUMN xid bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX ivr_changes_by_xid ON ivr_changes (xid);

CREATE SEQUENCE ivr_commits_seq AS bigint;

-- One row per committed transaction that wrote IVR changes.
CREATE TABLE ivr_commits (
    xid bigint      PRIMARY KEY,
    -- Commit order; NULL only inside the writing transaction, before it commits.
    seq bigint      UNIQUE,
    -- When it committed (stamped with seq); pruning goes by it.
    at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ivr_commits_by_age ON ivr_commits (at);

-- Never holds rows: only locked, to stamp commits one at a time.
CREATE TABLE ivr_commit_lock ();

-- Changes written before this migration belong to no commit: count them as pruned, so a
-- follower that had not read them reloads, and start commit numbers above every old cursor.
UPDATE ivr_changes_pruned
   SET upto = GREATEST(upto, (SELECT COALESCE(MAX(id), 0) FROM ivr_changes))
 WHERE singleton = 1;
DELETE FROM ivr_changes;
SELECT setval('ivr_commits_seq', (SELECT upto FROM ivr_changes_pruned WHERE singleton = 1) + 1, false);

-- After any insert into the log: register the transaction (once; the local setting makes
-- later statements of the same transaction skip the insert, and is undone with a rolled-back
-- savepoint together with the row it stands for) and tell listeners (delivered at commit).
CREATE FUNCTION ivr_changes_register() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    me text := pg_current_xact_id()::text;
BEGIN
    IF current_setting('outagecast.ivr_xact', true) IS DISTINCT FROM me THEN
        INSERT INTO ivr_commits (xid) VALUES (me::bigint) ON CONFLICT (xid) DO NOTHING;
        PERFORM set_config('outagecast.ivr_xact', me, true);
        PERFORM pg_notify('outagecast_ivr', '');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ivr_changes_register AFTER INSERT ON ivr_changes
    FOR EACH STATEMENT EXECUTE FUNCTION ivr_changes_register();

-- At commit: the next commit number, under a lock held until the commit is visible.
CREATE FUNCTION ivr_commits_stamp() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE ivr_commit_lock IN EXCLUSIVE MODE;
    UPDATE ivr_commits SET seq = nextval('ivr_commits_seq'), at = clock_timestamp()
     WHERE xid = NEW.xid AND seq IS NULL;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ivr_commits_stamp AFTER INSERT ON ivr_commits
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ivr_commits_stamp();

-- The customers generation moved: engine nodes rebuild their index.
CREATE FUNCTION meta_customers_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outagecast_customers', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER meta_customers_notify AFTER UPDATE OF value ON meta
    FOR EACH ROW
    WHEN (NEW.key = 'customers_generation' AND NEW.value IS DISTINCT FROM OLD.value)
    EXECUTE FUNCTION meta_customers_notify();
