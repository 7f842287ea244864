//! Messages of every conversation (`messages`), searchable with PostgreSQL full-text search.

use async_trait::async_trait;
use omnistream_domain::conversation::ConversationEvent;
use omnistream_domain::MessageStatus;
use serde_json::json;
use sqlx::PgConnection;

use crate::inbox::conversation_event;
use crate::{Projector, RecordedEvent};

/// Maintains `messages`.
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagesProjector;

#[async_trait]
impl Projector for MessagesProjector {
    fn name(&self) -> &'static str {
        "messages"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["messages"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let Some((stream, parsed)) = conversation_event(event) else {
            return Ok(());
        };
        let tenant = stream.tenant_id.as_uuid();
        use ConversationEvent as E;
        match parsed {
            E::InboundMessageReceived {
                message_id,
                provider_message_id,
                content,
                sender_name,
                received_at,
                ..
            } => {
                // A reply or reaction names the provider id of the message it refers to.
                let reply_to: Option<String> = match &content.reply_to_provider_id {
                    Some(provider_id) => sqlx::query_scalar::<_, uuid::Uuid>(
                        "SELECT id FROM messages WHERE tenant_id = $1 AND external_id = $2 LIMIT 1",
                    )
                    .bind(tenant)
                    .bind(provider_id)
                    .fetch_optional(&mut *conn)
                    .await?
                    .map(|id| id.to_string()),
                    None => None,
                };
                let mut data = content.data.clone();
                if let Some(media) = &content.media {
                    let media_info = json!({"provider_media_id": media.provider_media_id, "sha256": media.sha256});
                    match &mut data {
                        Some(serde_json::Value::Object(map)) => {
                            map.insert("media".into(), media_info);
                        }
                        _ => data = Some(json!({ "media": media_info })),
                    }
                }
                sqlx::query(
                    "INSERT INTO messages (id, tenant_id, conversation_id, direction, type, status, content, media_url,
                        media_mime_type, filename, sender_type, sender_name, external_id, reply_to_message_id, data,
                        created_at, updated_at)
                     VALUES ($1, $2, $3, 'inbound', $4, 'received', $5, $6, $7, $8, 'contact', $9, $10, $11, $12, $13, $13)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(message_id)
                .bind(tenant)
                .bind(stream.id)
                .bind(content.message_type.as_str())
                .bind(&content.content)
                .bind(content.media.as_ref().and_then(|m| m.url.clone()))
                .bind(content.media.as_ref().and_then(|m| m.mime_type.clone()))
                .bind(content.media.as_ref().and_then(|m| m.filename.clone()))
                .bind(sender_name)
                .bind(provider_message_id)
                .bind(reply_to)
                .bind(data)
                .bind(received_at)
                .execute(&mut *conn)
                .await?;
            }
            E::OutboundMessageQueued {
                message_id,
                sender,
                message_type,
                content,
                media_url,
                filename,
                template,
                reply_to_message_id,
                subject,
                message_tag,
                queued_at,
            } => {
                let mut data = serde_json::Map::new();
                if let Some(subject) = &subject {
                    data.insert("email".into(), json!({ "subject": subject }));
                }
                if let Some(tag) = message_tag {
                    data.insert("message_tag".into(), tag.as_str().into());
                }
                let data = (!data.is_empty()).then_some(serde_json::Value::Object(data));
                let template_name = template
                    .as_ref()
                    .and_then(|t| t.get("name"))
                    .and_then(|n| n.as_str())
                    .map(str::to_owned);
                sqlx::query(
                    "INSERT INTO messages (id, tenant_id, conversation_id, direction, type, status, content, media_url,
                        filename, template, template_name, sender_type, sender_id, sender_name, reply_to_message_id,
                        data, created_at, updated_at)
                     VALUES ($1, $2, $3, 'outbound', $4, 'pending', $5, $6, $7, $8, $9, $10, $11, $12, $13, $15, $14, $14)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(message_id)
                .bind(tenant)
                .bind(stream.id)
                .bind(message_type.as_str())
                .bind(content)
                .bind(media_url)
                .bind(filename)
                .bind(template)
                .bind(template_name)
                .bind(&sender.sender_type)
                .bind(sender.id)
                .bind(&sender.name)
                .bind(reply_to_message_id)
                .bind(queued_at)
                .bind(data)
                .execute(&mut *conn)
                .await?;
            }
            E::OutboundMessageEchoed {
                message_id,
                provider_message_id,
                content,
                sent_at,
                ..
            } => {
                let mut data = match content.data {
                    Some(serde_json::Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                data.insert("echo".into(), true.into());
                sqlx::query(
                    "INSERT INTO messages (id, tenant_id, conversation_id, direction, type, status, content, media_url,
                        media_mime_type, filename, sender_type, external_id, data, created_at, updated_at)
                     VALUES ($1, $2, $3, 'outbound', $4, 'sent', $5, $6, $7, $8, 'agent', $9, $10, $11, $11)
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(message_id)
                .bind(tenant)
                .bind(stream.id)
                .bind(content.message_type.as_str())
                .bind(&content.content)
                .bind(content.media.as_ref().and_then(|m| m.url.clone()))
                .bind(content.media.as_ref().and_then(|m| m.mime_type.clone()))
                .bind(content.media.as_ref().and_then(|m| m.filename.clone()))
                .bind(provider_message_id)
                .bind(serde_json::Value::Object(data))
                .bind(sent_at)
                .execute(&mut *conn)
                .await?;
            }
            E::OutboundMessageSent {
                message_id,
                provider_message_id,
                at,
            } => {
                sqlx::query(
                    "UPDATE messages SET status = 'sent', external_id = $2, error_message = NULL, updated_at = $3 WHERE id = $1",
                )
                .bind(message_id)
                .bind(provider_message_id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            E::OutboundStatusChanged {
                message_id,
                status,
                at,
                error_code,
                error_title,
                ..
            } => {
                let error = (status == MessageStatus::Failed)
                    .then(|| describe_error(error_code, error_title.as_deref()));
                sqlx::query(
                    "UPDATE messages SET status = $2, error_message = COALESCE($3, error_message), updated_at = GREATEST(updated_at, $4)
                     WHERE id = $1",
                )
                .bind(message_id)
                .bind(status.as_str())
                .bind(error)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            E::OutboundMessageFailed {
                message_id,
                error_code,
                reason,
                at,
            } => {
                sqlx::query("UPDATE messages SET status = 'failed', error_message = $2, updated_at = $3 WHERE id = $1")
                    .bind(message_id)
                    .bind(describe_error(error_code, Some(&reason)))
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            E::OutboundMessageRetried { message_id, at } => {
                sqlx::query("UPDATE messages SET status = 'pending', error_message = NULL, updated_at = $2 WHERE id = $1")
                    .bind(message_id)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            E::ConversationRead { at } => {
                sqlx::query(
                    "UPDATE messages SET status = 'read', updated_at = $2
                     WHERE conversation_id = $1 AND direction = 'inbound' AND status = 'received'",
                )
                .bind(stream.id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// `(#code) title`, as Meta writes its errors.
pub fn describe_error(code: Option<i64>, title: Option<&str>) -> String {
    match (code, title) {
        (Some(code), Some(title)) => format!("(#{code}) {title}"),
        (Some(code), None) => format!("(#{code})"),
        (None, Some(title)) => title.to_owned(),
        (None, None) => "failed".to_owned(),
    }
}
