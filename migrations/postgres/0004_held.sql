-- A notice that cannot go out now (issues 13 and 21); see migrations/sqlite/0008_held.sql.
ALTER TABLE notices ADD COLUMN held boolean NOT NULL DEFAULT false;
