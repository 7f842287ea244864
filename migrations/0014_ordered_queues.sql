-- Order across processes. Several worker processes may work through the same queues; these
-- columns let each claim keep a customer's payloads, and a conversation's outbound messages, in
-- the order they arrived.

-- The customer a raw inbound payload is about (its channel's ordering key, computed by the
-- receiver that stored it). A payload is claimed only while no earlier payload with the same
-- key is in flight or waiting for a retry. Rows stored before this column share one key.
ALTER TABLE inbound_webhooks ADD COLUMN ordering_key TEXT NOT NULL DEFAULT '';
CREATE INDEX inbound_webhooks_pending_key_idx ON inbound_webhooks (ordering_key, id) WHERE status = 'pending';

-- Outbound jobs numbered in the order the projector queued them (the event log's order), so the
-- sender hands a conversation's messages to the provider one after the other, in that order.
ALTER TABLE outbound_jobs ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX outbound_jobs_conversation_idx ON outbound_jobs (conversation_id, seq);
