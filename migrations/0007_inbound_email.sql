-- Inbound email arrives in several shapes (raw MIME, JSON); the raw log keeps the declared
-- content type so the processor parses each payload as it was sent.
ALTER TABLE inbound_webhooks ADD COLUMN content_type TEXT;
