-- Delivery receipts that arrive before the dispatcher has recorded the provider's message id.
-- A fast gateway can call the status webhook before the worker that sent the message has
-- written `provider_id`; such a receipt waits here, and the trigger below applies it the
-- moment a notice gets that id. Rows nobody claims are pruned after a day.
CREATE TABLE early_receipts (
    provider_id TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
    reason      TEXT,
    at          TEXT NOT NULL
) WITHOUT ROWID;

-- When a sent SMS gets its provider id and a receipt is already waiting for it: apply the
-- receipt (delivered, or failed with the provider's reason), fall back to email for a failed
-- one exactly as a failed send does, and drop the waiting receipt.
CREATE TRIGGER notices_apply_early_receipt
AFTER UPDATE OF provider_id ON notices
WHEN NEW.provider_id IS NOT NULL
 AND NEW.status = 'sent'
 AND NEW.channel = 'sms'
 AND EXISTS (SELECT 1 FROM early_receipts r WHERE r.provider_id = NEW.provider_id)
BEGIN
    UPDATE notices
       SET status = (SELECT r.status FROM early_receipts r WHERE r.provider_id = NEW.provider_id),
           delivered_at = (SELECT CASE r.status WHEN 'delivered' THEN r.at END
                             FROM early_receipts r WHERE r.provider_id = NEW.provider_id),
           last_error = COALESCE((SELECT r.reason FROM early_receipts r
                                   WHERE r.provider_id = NEW.provider_id AND r.status = 'failed'),
                                 NEW.last_error)
     WHERE id = NEW.id;

    INSERT OR IGNORE INTO notices (incident_id, event_id, channel, address, language, priority,
                                   subject, body, created_at, updated_at)
    SELECT DISTINCT NEW.incident_id, NEW.event_id, 'email', c.value, NEW.language, NEW.priority,
           NEW.subject, NEW.body, NEW.updated_at, NEW.updated_at
      FROM notice_customers nc
      JOIN contacts c ON c.customer_id = nc.customer_id AND c.medium = 'email'
     WHERE nc.notice_id = NEW.id
       AND EXISTS (SELECT 1 FROM early_receipts r
                    WHERE r.provider_id = NEW.provider_id AND r.status = 'failed')
       AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = 'email' AND o.address = c.value);

    DELETE FROM early_receipts WHERE provider_id = NEW.provider_id;
END;
