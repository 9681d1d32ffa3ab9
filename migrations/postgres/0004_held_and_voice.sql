-- Issue 21's voice channel and issue 13's `held` mark; see
-- migrations/sqlite/0008_held_and_voice.sql.
ALTER TABLE notices ADD COLUMN held boolean NOT NULL DEFAULT false;
ALTER TABLE notices DROP CONSTRAINT notices_channel_check,
    ADD CONSTRAINT notices_channel_check CHECK (channel IN ('sms', 'email', 'voice'));
ALTER TABLE opt_outs DROP CONSTRAINT opt_outs_channel_check,
    ADD CONSTRAINT opt_outs_channel_check CHECK (channel IN ('sms', 'email', 'voice'));
