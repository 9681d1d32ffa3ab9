-- A notice that cannot go out now (issues 13 and 21): its channel's circuit is open (the
-- provider refuses this node's credentials, does not know the account, cannot be reached) or
-- the channel is not configured on the node that runs the dispatcher. It stays `pending` (so
-- claims, follow-ups and withdrawals treat it as every waiting notice) with this mark, and
-- reads as `held`; the reason is its last_error. Any attempt's outcome clears the mark, and so
-- does the dispatcher once the cause is gone (the circuit closes, the channel is configured).
ALTER TABLE notices ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
