-- GET /api/media/{id} finds the inbound message naming media that is not stored yet (a WhatsApp
-- media id fetched on first read) by its media_id, within the tenant.
CREATE INDEX messages_media_idx ON messages (tenant_id, media_id) WHERE media_id IS NOT NULL;
