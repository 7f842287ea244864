-- Outgoing webhooks: endpoints, one row per delivery attempt, and the processed-event record
-- that makes fan-out idempotent.

CREATE TABLE outgoing_webhooks
(
    id                   UUID PRIMARY KEY,
    tenant_id            UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                 TEXT        NOT NULL,
    url                  TEXT        NOT NULL,
    events               TEXT[]      NOT NULL,
    -- whsec_ secrets, encrypted at rest; previous_secret signs too while a rotation settles.
    secret               TEXT        NOT NULL,
    previous_secret      TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    is_active            BOOLEAN     NOT NULL DEFAULT true,
    headers              JSONB       NOT NULL DEFAULT '{}',
    last_delivery_at     TIMESTAMPTZ,
    consecutive_failures INT         NOT NULL DEFAULT 0,
    failing_since        TIMESTAMPTZ,
    created_by           UUID        NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT outgoing_webhooks_tenant_id_key UNIQUE (tenant_id, id)
);
CREATE INDEX outgoing_webhooks_tenant_idx ON outgoing_webhooks (tenant_id, created_at);

CREATE SEQUENCE webhook_delivery_order;

CREATE TABLE webhook_deliveries
(
    id              UUID PRIMARY KEY,
    tenant_id       UUID        NOT NULL,
    webhook_id      UUID        NOT NULL,
    event_id        TEXT        NOT NULL,
    event_type      TEXT        NOT NULL,
    -- The stored event it came from (`<aggregate_type>:<aggregate_id>:<sequence>`), for replays.
    source_event    TEXT,
    payload         JSONB       NOT NULL,
    -- Deliveries with the same key (a conversation) reach an endpoint in order of order_seq;
    -- a retry keeps the order_seq of its first attempt.
    ordering_key    TEXT        NOT NULL,
    order_seq       BIGINT      NOT NULL DEFAULT nextval('webhook_delivery_order'),
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'success', 'failed', 'exhausted')),
    attempt         INT         NOT NULL DEFAULT 1,
    next_retry_at   TIMESTAMPTZ,
    response_status INT,
    response_body   TEXT,
    error_message   TEXT,
    duration_ms     INT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at    TIMESTAMPTZ,
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES outgoing_webhooks (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_retry_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (webhook_id, ordering_key, order_seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (tenant_id, webhook_id, created_at DESC);

-- One row per (event, endpoint) fanned out, written with the delivery rows: a redelivered
-- JetStream message never creates a second delivery.
CREATE TABLE webhook_fanout
(
    event_id   TEXT        NOT NULL,
    webhook_id UUID        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, webhook_id)
);

-- Replays and the realtime stream select one tenant's events (aggregate ids start with the
-- tenant) and time ranges.
CREATE INDEX events_tenant_prefix_idx ON events (aggregate_id text_pattern_ops);
CREATE INDEX events_recorded_at_idx ON events (recorded_at);
