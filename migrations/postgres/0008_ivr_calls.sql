-- The IVR's call log: every caller the phone system asked about, when, and whether an
-- announcement was armed for them. The calls-avoided report of an incident joins it with the
-- incident's IVR flags and its sent notices; kept 90 days (see store::ops::call_log).
CREATE TABLE ivr_calls (
    id        bigserial   PRIMARY KEY,
    caller    text        NOT NULL,
    at        timestamptz NOT NULL,
    announced bigint      NOT NULL CHECK (announced IN (0, 1))
);
CREATE INDEX ivr_calls_by_caller ON ivr_calls (caller, at);
CREATE INDEX ivr_calls_by_time ON ivr_calls (at);
