-- The in-doubt window is what is on the wire (issue 13); see migrations/sqlite/0007_handed.sql.
UPDATE notices SET in_doubt = 1 WHERE in_doubt > 1;
ALTER TABLE notices ADD COLUMN possible_duplicate boolean NOT NULL DEFAULT false;
