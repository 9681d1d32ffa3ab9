-- The dispatcher's bookkeeping on the outbox.
-- in_doubt: a claim was made and its outcome not recorded yet. After a crash such a notice may
-- or may not have reached the provider; the dispatcher asks the provider before sending again.
ALTER TABLE notices ADD COLUMN in_doubt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notices ADD COLUMN segments INTEGER;
ALTER TABLE notices ADD COLUMN sent_at TEXT;
ALTER TABLE notices ADD COLUMN delivered_at TEXT;
-- Receipts from the provider arrive by its message id.
CREATE INDEX notices_by_provider_id ON notices (provider_id) WHERE provider_id IS NOT NULL;
