-- Issue 21's voice transport: every call placed and its final status; see
-- migrations/sqlite/0010_voice.sql.
CREATE TABLE call_attempts (
    provider_id text        NOT NULL PRIMARY KEY,
    notice_id   bigint      NOT NULL REFERENCES notices(id),
    outcome     text        NOT NULL
                CHECK (outcome IN ('answered', 'busy', 'no-answer', 'failed', 'canceled')),
    answered_by text,
    at          timestamptz NOT NULL
);
CREATE INDEX call_attempts_by_notice ON call_attempts (notice_id);
CREATE INDEX notices_calls_in_progress ON notices (sent_at) WHERE channel = 'voice' AND status = 'sent';
