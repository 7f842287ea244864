-- The webhook sender claims each endpoint's due deliveries in order_seq order, one endpoint
-- at a time (a LATERAL scan that stops after a few rows), instead of ranking every due
-- delivery of every endpoint on each round. The `next_retry_at IS NOT NULL` predicate (true of
-- every pending row, and implied by the claim's `next_retry_at <= now()`) keeps this index out
-- of the per-conversation ordering probe, which must use webhook_deliveries_order_idx: with
-- fresh statistics the planner could otherwise scan a whole endpoint's backlog per probe.
CREATE INDEX webhook_deliveries_endpoint_order_idx ON webhook_deliveries (webhook_id, order_seq)
    WHERE status = 'pending' AND next_retry_at IS NOT NULL;
