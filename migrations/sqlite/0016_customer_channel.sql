-- The one channel a customer asked to be told by (the customers import's optional `channel`
-- column: sms, email or voice); NULL: every contact by its default channel.
ALTER TABLE customers ADD COLUMN channel TEXT CHECK (channel IN ('sms', 'email', 'voice'));
