-- The processor claims the oldest due payloads (`ORDER BY id LIMIT n`). With only the index by
-- (next_attempt_at, id), PostgreSQL read every due payload, probed each for an earlier one of
-- its customer, and sorted them all, bodies included, to keep the first few hundred: each
-- claim cost grew with the backlog (10,000 waiting payloads: the processor fell to ~600/s).
-- Walking pending payloads in id order stops after the batch.
CREATE INDEX inbound_webhooks_pending_id_idx ON inbound_webhooks (id) WHERE status = 'pending';
