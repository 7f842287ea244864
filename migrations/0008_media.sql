-- Stored media (contract §9): uploads and inbound email attachments. The bytes live in the media
-- store (the local filesystem under <data_dir>/media by default) at storage_key; a row is
-- inserted only after its bytes are durable, so every id here has its file.
CREATE TABLE media
(
    id              UUID PRIMARY KEY,
    tenant_id       UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- The conversation it was uploaded for or arrived in: only agents who can see that
    -- conversation can read it. NULL: any agent of the tenant.
    conversation_id UUID,
    filename        TEXT        NOT NULL,
    mime_type       TEXT        NOT NULL,
    size            BIGINT      NOT NULL CHECK (size >= 0),
    -- Lowercase hex SHA-256 of the bytes.
    sha256          TEXT        NOT NULL,
    storage_key     TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX media_tenant_idx ON media (tenant_id, created_at);
CREATE INDEX media_conversation_idx ON media (tenant_id, conversation_id) WHERE conversation_id IS NOT NULL;

-- A message refers to stored media by media_url = '/api/media/<id>' (events carry that URL);
-- the id is derived here so the read model can expose Message.media_id without a second copy.
ALTER TABLE messages
    ADD COLUMN media_id UUID GENERATED ALWAYS AS (
        CASE
            WHEN media_url ~ '^/api/media/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                THEN substr(media_url, 12)::uuid
        END) STORED;
