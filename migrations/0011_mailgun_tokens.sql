-- Mailgun signs only `timestamp` + `token`, not the message, so a captured signature would
-- authenticate any body for as long as its timestamp is accepted (15 minutes either side of
-- now). Each token is therefore accepted once: it is kept here, shared by every ingest
-- instance, until its window has passed (`expires_at`), and the receiver prunes expired rows.
CREATE TABLE mailgun_webhook_tokens
(
    token      TEXT        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX mailgun_webhook_tokens_expires_idx ON mailgun_webhook_tokens (expires_at);
