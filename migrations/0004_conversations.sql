-- The conversation spine: channel integrations, contacts, the raw inbound log, and the read
-- models the projectors own (conversations, messages, transfers, outbound jobs).

CREATE TABLE integrations
(
    id          UUID PRIMARY KEY,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel     TEXT        NOT NULL CHECK (channel IN ('whatsapp', 'instagram', 'email', 'messenger')),
    is_active   BOOLEAN     NOT NULL DEFAULT false,
    -- Sensitive values are stored encrypted ("enc:v1:…"), see gateway::crypto.
    config      JSONB       NOT NULL DEFAULT '{}',
    division_id UUID,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT integrations_tenant_channel_key UNIQUE (tenant_id, channel),
    CONSTRAINT integrations_division_fkey FOREIGN KEY (tenant_id, division_id)
        REFERENCES divisions (tenant_id, id) ON DELETE SET NULL (division_id)
);

CREATE TABLE integration_accounts
(
    id           UUID PRIMARY KEY,
    tenant_id    UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel      TEXT        NOT NULL CHECK (channel IN ('whatsapp', 'instagram', 'email', 'messenger')),
    account_key  TEXT        NOT NULL,
    display_name TEXT        NOT NULL,
    is_active    BOOLEAN     NOT NULL DEFAULT false,
    is_default   BOOLEAN     NOT NULL DEFAULT false,
    division_id  UUID,
    config       JSONB       NOT NULL DEFAULT '{}',
    verify_token TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Inbound webhooks are routed by account_key, so it is unique across the platform.
    CONSTRAINT integration_accounts_channel_key UNIQUE (channel, account_key),
    CONSTRAINT integration_accounts_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT integration_accounts_division_fkey FOREIGN KEY (tenant_id, division_id)
        REFERENCES divisions (tenant_id, id) ON DELETE SET NULL (division_id)
);
CREATE UNIQUE INDEX integration_accounts_one_default_key ON integration_accounts (tenant_id, channel) WHERE is_default;
CREATE INDEX integration_accounts_verify_token_idx ON integration_accounts (verify_token);

CREATE TABLE chat_expiration_rules
(
    id               UUID PRIMARY KEY,
    tenant_id        UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    channel          TEXT        NOT NULL CHECK (channel IN ('whatsapp', 'instagram', 'email', 'messenger')),
    expiration_hours INT         NOT NULL CHECK (expiration_hours BETWEEN 1 AND 720),
    is_active        BOOLEAN     NOT NULL DEFAULT true,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT chat_expiration_rules_tenant_channel_key UNIQUE (tenant_id, channel)
);

-- Contacts are matched on their channel identifier; ids are derived from it (UUIDv5), so two
-- webhooks for a new customer arriving together agree on one contact.
CREATE TABLE contacts
(
    id                UUID PRIMARY KEY,
    tenant_id         UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name              TEXT        NOT NULL,
    phone_number      TEXT,
    email             TEXT,
    avatar_url        TEXT,
    wa_id             TEXT,
    instagram_id      TEXT,
    messenger_psid    TEXT,
    tags              TEXT[]      NOT NULL DEFAULT '{}',
    custom_attributes JSONB       NOT NULL DEFAULT '{}',
    last_contacted_at TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT contacts_tenant_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX contacts_tenant_wa_id_key ON contacts (tenant_id, wa_id) WHERE wa_id IS NOT NULL;
CREATE INDEX contacts_tenant_updated_idx ON contacts (tenant_id, updated_at DESC);

-- Every inbound webhook body, stored before it is acknowledged. A worker turns pending rows
-- into commands; rows it cannot use stay here (status ignored/failed) for inspection.
CREATE TABLE inbound_webhooks
(
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider     TEXT        NOT NULL,
    body         BYTEA       NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    status       TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'ignored', 'failed')),
    attempts     INT         NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    error        TEXT,
    processed_at TIMESTAMPTZ
);
CREATE INDEX inbound_webhooks_pending_idx ON inbound_webhooks (next_attempt_at, id) WHERE status = 'pending';

CREATE TABLE notes
(
    id              UUID PRIMARY KEY,
    tenant_id       UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id UUID        NOT NULL,
    agent_id        UUID        NOT NULL,
    content         TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notes_conversation_idx ON notes (tenant_id, conversation_id, created_at);

-- Read model of the inbox projector.
CREATE TABLE conversations
(
    id                       UUID PRIMARY KEY,
    tenant_id                UUID        NOT NULL,
    contact_id               UUID        NOT NULL,
    channel                  TEXT        NOT NULL,
    integration_account_id   UUID,
    status                   TEXT        NOT NULL,
    assigned_agent_id        UUID,
    division_id              UUID,
    tags                     TEXT[]      NOT NULL DEFAULT '{}',
    unread_count             INT         NOT NULL DEFAULT 0,
    ai_active                BOOLEAN     NOT NULL DEFAULT false,
    ai_agent_id              UUID,
    last_message_at          TIMESTAMPTZ,
    last_message_preview     TEXT,
    last_customer_message_at TIMESTAMPTZ,
    resolved_at              TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversations_inbox_idx ON conversations (tenant_id, last_message_at DESC NULLS LAST, id);
CREATE INDEX conversations_contact_idx ON conversations (tenant_id, contact_id);

CREATE TABLE conversation_transfers
(
    id               UUID PRIMARY KEY,
    tenant_id        UUID        NOT NULL,
    conversation_id  UUID        NOT NULL,
    type             TEXT        NOT NULL,
    from_agent_id    UUID,
    to_agent_id      UUID,
    from_division_id UUID,
    to_division_id   UUID,
    reason           TEXT,
    transferred_by   UUID        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversation_transfers_conversation_idx ON conversation_transfers (tenant_id, conversation_id, created_at DESC);

-- Read model of the messages projector.
CREATE TABLE messages
(
    id                  UUID PRIMARY KEY,
    tenant_id           UUID        NOT NULL,
    conversation_id     UUID        NOT NULL,
    direction           TEXT        NOT NULL,
    type                TEXT        NOT NULL,
    status              TEXT        NOT NULL,
    content             TEXT,
    media_url           TEXT,
    media_mime_type     TEXT,
    filename            TEXT,
    template            JSONB,
    template_name       TEXT,
    sender_type         TEXT        NOT NULL,
    sender_id           UUID,
    sender_name         TEXT,
    external_id         TEXT,
    reply_to_message_id TEXT,
    error_message       TEXT,
    data                JSONB,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at, id);
CREATE INDEX messages_tenant_external_idx ON messages (tenant_id, external_id);
-- Message search is a case-insensitive substring match (contract §3), served by trigrams.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX messages_content_trgm_idx ON messages USING GIN (content gin_trgm_ops);

-- Read model of the outbound-queue projector: messages waiting for the channel worker.
CREATE TABLE outbound_jobs
(
    message_id      UUID PRIMARY KEY,
    tenant_id       UUID        NOT NULL,
    conversation_id UUID        NOT NULL,
    attempts        INT         NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbound_jobs_due_idx ON outbound_jobs (next_attempt_at);
