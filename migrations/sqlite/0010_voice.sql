-- Issue 21: the voice transport. Each call placed for a voice notice, by the provider's call
-- sid, with what its final status callback said (answered by a person or a voicemail, busy,
-- no answer, failed, canceled): the per-recipient report shows every attempt, the metrics
-- count calls by outcome, and a busy or unanswered line is called again from here.
-- A notice is called at most OUTAGECAST_VOICE_ATTEMPTS times, so the table stays small.
CREATE TABLE call_attempts (
    provider_id TEXT    NOT NULL PRIMARY KEY,
    notice_id   INTEGER NOT NULL REFERENCES notices(id),
    outcome     TEXT    NOT NULL
                CHECK (outcome IN ('answered', 'busy', 'no-answer', 'failed', 'canceled')),
    answered_by TEXT,
    at          TEXT    NOT NULL
);
CREATE INDEX call_attempts_by_notice ON call_attempts (notice_id);
-- Calls in progress (the OUTAGECAST_VOICE_MAX_CALLS cap): voice notices sent and not yet
-- settled by their status callback.
CREATE INDEX notices_calls_in_progress ON notices (sent_at) WHERE channel = 'voice' AND status = 'sent';
