//! Messages of every conversation (`messages`), searchable by substring (a trigram index).
//! Its reads are in [`queries`].

pub mod queries;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnistream_domain::conversation::ConversationEvent;
use omnistream_domain::{InboundContent, MessageStatus, StreamId};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

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
                mut content,
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
                // Taken, not copied (an email's sanitised HTML is in it): the insert below reads
                // the other fields only.
                let mut data = content.data.take();
                if let Some(media) = &content.media {
                    let media_info = json!({"provider_media_id": media.provider_media_id, "sha256": media.sha256});
                    match &mut data {
                        Some(serde_json::Value::Object(map)) => {
                            map.insert("media".into(), media_info);
                        }
                        _ => data = Some(json!({ "media": media_info })),
                    }
                }
                let message = ProviderMessage {
                    id: message_id,
                    direction: "inbound",
                    status: "received",
                    sender_type: "contact",
                    sender_name: sender_name.as_deref(),
                    content: &content,
                    external_id: provider_message_id.as_deref(),
                    reply_to,
                    data,
                    at: received_at,
                };
                insert_provider_message(conn, &stream, message).await?;
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
                mut content,
                sent_at,
                ..
            } => {
                let mut data = match content.data.take() {
                    Some(Value::Object(map)) => map,
                    _ => serde_json::Map::new(),
                };
                data.insert("echo".into(), true.into());
                let message = ProviderMessage {
                    id: message_id,
                    direction: "outbound",
                    status: "sent",
                    sender_type: "agent",
                    sender_name: None,
                    content: &content,
                    external_id: Some(&provider_message_id),
                    reply_to: None,
                    data: Some(Value::Object(data)),
                    at: sent_at,
                };
                insert_provider_message(conn, &stream, message).await?;
            }
            E::EchoMatched {
                echo_message_id, ..
            } => {
                sqlx::query("DELETE FROM messages WHERE id = $1 AND tenant_id = $2")
                    .bind(echo_message_id)
                    .bind(tenant)
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

/// A message whose content a provider reported: a customer's message, or the echo of one the
/// business sent from outside OmniStream.
struct ProviderMessage<'a> {
    id: Uuid,
    direction: &'static str,
    status: &'static str,
    sender_type: &'static str,
    sender_name: Option<&'a str>,
    /// Its type, text and media; `data` below stands in for `content.data`.
    content: &'a InboundContent,
    external_id: Option<&'a str>,
    /// Our id of the message it replies or reacts to.
    reply_to: Option<String>,
    data: Option<Value>,
    /// Both `created_at` and `updated_at`.
    at: DateTime<Utc>,
}

/// Inserts `message` into the conversation `stream`; a replayed event inserts nothing.
async fn insert_provider_message(
    conn: &mut PgConnection,
    stream: &StreamId,
    message: ProviderMessage<'_>,
) -> sqlx::Result<()> {
    let media = message.content.media.as_ref();
    sqlx::query(
        "INSERT INTO messages (id, tenant_id, conversation_id, direction, type, status, content, media_url,
            media_mime_type, filename, sender_type, sender_name, external_id, reply_to_message_id, data,
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(message.id)
    .bind(stream.tenant_id.as_uuid())
    .bind(stream.id)
    .bind(message.direction)
    .bind(message.content.message_type.as_str())
    .bind(message.status)
    .bind(&message.content.content)
    .bind(media.and_then(|m| m.url.as_deref()))
    .bind(media.and_then(|m| m.mime_type.as_deref()))
    .bind(media.and_then(|m| m.filename.as_deref()))
    .bind(message.sender_type)
    .bind(message.sender_name)
    .bind(message.external_id)
    .bind(message.reply_to)
    .bind(message.data)
    .bind(message.at)
    .execute(conn)
    .await?;
    Ok(())
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
