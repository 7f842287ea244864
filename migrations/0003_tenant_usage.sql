-- Read model of the tenant-usage projector: events appended per tenant and aggregate type.
CREATE TABLE tenant_event_counters
(
    tenant_id      UUID        NOT NULL,
    aggregate_type TEXT        NOT NULL,
    event_count    BIGINT      NOT NULL,
    last_event_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, aggregate_type)
);
