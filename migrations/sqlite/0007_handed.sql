-- The in-doubt window is what is on the wire (issue 13).
-- in_doubt now means: the notice was handed to a provider (its request may be on the wire) and
-- its outcome is not recorded yet. A claim alone no longer marks it; after a crash only the
-- notices whose requests were in flight are in doubt. Old rows marked 2 (claimed twice) mean
-- the same as 1.
UPDATE notices SET in_doubt = 1 WHERE in_doubt > 1;
-- An in-doubt notice that the provider could not be asked about and that was sent again:
-- the customer may have it twice. Counted in reports and metrics.
ALTER TABLE notices ADD COLUMN possible_duplicate INTEGER NOT NULL DEFAULT 0;
