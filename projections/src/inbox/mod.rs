//! The inbox: one row per conversation (`conversations`), its transfer history
//! (`conversation_transfers`), and the contacts they show (`contacts`, applied in the same
//! transactions so a conversation never appears before its contact).
//!
//! The row is computed by a pure fold over the conversation's events ([`fold`]), which the audit
//! endpoint also uses to show a conversation as it was at any time. Its reads, including the
//! visibility rule in SQL, are in [`queries`].

pub mod queries;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnistream_domain::conversation::{ConversationEvent, ConversationStatus};
use omnistream_domain::{InboundContent, MessageType, StreamId};
use serde::Deserialize;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::{Projector, RecordedEvent};

/// A row of `conversations`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct ConversationRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub contact_id: Uuid,
    pub channel: String,
    pub integration_account_id: Option<Uuid>,
    pub status: String,
    pub assigned_agent_id: Option<Uuid>,
    pub division_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub unread_count: i32,
    pub ai_active: bool,
    pub ai_agent_id: Option<Uuid>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_preview: Option<String>,
    pub last_customer_message_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Reads a stored event of the Conversation aggregate.
pub fn conversation_event(event: &RecordedEvent) -> Option<(StreamId, ConversationEvent)> {
    if event.aggregate_type != omnistream_domain::conversation::AGGREGATE_TYPE {
        return None;
    }
    let stream = event.aggregate_id.parse::<StreamId>().ok()?;
    match ConversationEvent::deserialize(&event.payload) {
        Ok(parsed) => Some((stream, parsed)),
        Err(error) => {
            tracing::warn!(%error, aggregate_id = %event.aggregate_id, event_type = %event.event_type, "unreadable conversation event");
            None
        }
    }
}

/// At most 120 characters of what a message says, for the inbox.
pub fn preview(message_type: MessageType, content: Option<&str>) -> String {
    let text = content.map(str::trim).filter(|c| !c.is_empty());
    let preview = match (text, message_type) {
        (Some(text), _) => text.to_owned(),
        (None, kind) => format!("[{}]", kind.as_str()),
    };
    preview.chars().take(120).collect()
}

fn inbound_preview(content: &InboundContent) -> String {
    preview(content.message_type, content.content.as_deref())
}

/// Applies one event to a conversation row (`None` before the conversation is opened).
pub fn fold(row: Option<ConversationRow>, event: &ConversationEvent) -> Option<ConversationRow> {
    use ConversationEvent as E;
    if let E::ConversationOpened {
        conversation_id,
        tenant_id,
        channel,
        integration_account_id,
        contact_id,
        division_id,
        opened_at,
    } = event
    {
        return Some(ConversationRow {
            id: *conversation_id,
            tenant_id: *tenant_id,
            contact_id: *contact_id,
            channel: channel.as_str().to_owned(),
            integration_account_id: Some(*integration_account_id),
            status: ConversationStatus::Open.as_str().to_owned(),
            assigned_agent_id: None,
            division_id: *division_id,
            tags: Vec::new(),
            unread_count: 0,
            ai_active: false,
            ai_agent_id: None,
            last_message_at: None,
            last_message_preview: None,
            last_customer_message_at: None,
            resolved_at: None,
            created_at: *opened_at,
            updated_at: *opened_at,
        });
    }
    let mut row = row?;
    match event {
        E::ConversationOpened { .. } => {}
        E::ConversationReopened { at } => {
            row.status = ConversationStatus::Open.as_str().to_owned();
            row.resolved_at = None;
            row.updated_at = *at;
        }
        E::InboundMessageReceived {
            content,
            sent_at,
            received_at,
            ..
        } => {
            row.unread_count += 1;
            row.last_message_at = Some(
                row.last_message_at
                    .map_or(*received_at, |t| t.max(*received_at)),
            );
            row.last_message_preview = Some(inbound_preview(content));
            row.last_customer_message_at = Some(
                row.last_customer_message_at
                    .map_or(*sent_at, |t| t.max(*sent_at)),
            );
            row.updated_at = *received_at;
        }
        E::OutboundMessageQueued {
            message_type,
            content,
            template,
            queued_at,
            ..
        } => {
            let text = content.clone().or_else(|| {
                template
                    .as_ref()
                    .and_then(|t| t.get("name"))
                    .and_then(|n| n.as_str())
                    .map(|n| format!("[template: {n}]"))
            });
            row.last_message_at = Some(
                row.last_message_at
                    .map_or(*queued_at, |t| t.max(*queued_at)),
            );
            row.last_message_preview = Some(preview(*message_type, text.as_deref()));
            row.updated_at = *queued_at;
        }
        E::OutboundMessageEchoed {
            content, sent_at, ..
        } => {
            row.last_message_at = Some(row.last_message_at.map_or(*sent_at, |t| t.max(*sent_at)));
            row.last_message_preview = Some(inbound_preview(content));
            row.updated_at = row.updated_at.max(*sent_at);
        }
        E::AgentAssigned {
            to_agent_id, at, ..
        } => {
            row.assigned_agent_id = *to_agent_id;
            row.updated_at = *at;
        }
        E::StatusChanged {
            to,
            resolved_at,
            at,
            ..
        } => {
            row.status = to.as_str().to_owned();
            row.resolved_at = *resolved_at;
            row.updated_at = *at;
        }
        E::TagsUpdated { tags, at } => {
            row.tags = tags.clone();
            row.updated_at = *at;
        }
        E::ConversationRead { at } => {
            row.unread_count = 0;
            row.updated_at = *at;
        }
        E::ConversationTransferred {
            to_agent_id,
            to_division_id,
            kind,
            at,
            ..
        } => {
            row.assigned_agent_id = *to_agent_id;
            if to_division_id.is_some() {
                row.division_id = *to_division_id;
            }
            if *kind == omnistream_domain::conversation::TransferKind::Takeover {
                row.ai_active = false;
            }
            row.updated_at = *at;
        }
        E::OutboundMessageSent { .. }
        | E::EchoMatched { .. }
        | E::OutboundStatusChanged { .. }
        | E::OutboundStatusDeferred { .. }
        | E::OutboundMessageFailed { .. }
        | E::OutboundMessageRetried { .. }
        | E::NoteAdded { .. }
        | E::NoteEdited { .. }
        | E::NoteDeleted { .. } => {}
    }
    Some(row)
}

/// Maintains `conversations` and `conversation_transfers`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InboxProjector;

const COLUMNS: &str = "id, tenant_id, contact_id, channel, integration_account_id, status, assigned_agent_id, division_id, \
    tags, unread_count, ai_active, ai_agent_id, last_message_at, last_message_preview, last_customer_message_at, \
    resolved_at, created_at, updated_at";

#[async_trait]
impl Projector for InboxProjector {
    fn name(&self) -> &'static str {
        "inbox"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["conversations", "conversation_transfers", "contacts"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// Loads every touched row once, folds the batch in memory, writes each row once.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        for event in events
            .iter()
            .filter(|e| e.aggregate_type == omnistream_domain::contact::AGGREGATE_TYPE)
        {
            crate::ContactsProjector.apply(conn, event).await?;
        }
        let parsed: Vec<(StreamId, ConversationEvent)> =
            events.iter().filter_map(conversation_event).collect();
        if parsed.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = parsed.iter().map(|(stream, _)| stream.id).collect();
        let existing: Vec<ConversationRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM conversations WHERE id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let mut rows: HashMap<Uuid, Option<ConversationRow>> =
            existing.into_iter().map(|r| (r.id, Some(r))).collect();
        let mut touched: Vec<Uuid> = Vec::new();
        for (stream, event) in &parsed {
            let slot = rows.entry(stream.id).or_insert(None);
            let folded = fold(slot.take(), event);
            if folded
                .as_ref()
                .is_some_and(|row| row.tenant_id != stream.tenant_id.as_uuid())
            {
                anyhow::bail!("conversation {} changed tenant", stream.id);
            }
            *slot = folded;
            if !touched.contains(&stream.id) {
                touched.push(stream.id);
            }
            if let ConversationEvent::ConversationTransferred {
                transfer_id,
                kind,
                from_agent_id,
                to_agent_id,
                from_division_id,
                to_division_id,
                reason,
                transferred_by,
                at,
            } = event
            {
                sqlx::query(
                    "INSERT INTO conversation_transfers (id, tenant_id, conversation_id, type, from_agent_id, to_agent_id,
                        from_division_id, to_division_id, reason, transferred_by, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
                )
                .bind(transfer_id)
                .bind(stream.tenant_id.as_uuid())
                .bind(stream.id)
                .bind(match kind {
                    omnistream_domain::conversation::TransferKind::Transfer => "transfer",
                    omnistream_domain::conversation::TransferKind::Takeover => "takeover",
                })
                .bind(from_agent_id)
                .bind(to_agent_id)
                .bind(from_division_id)
                .bind(to_division_id)
                .bind(reason)
                .bind(transferred_by)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
        let rows: Vec<ConversationRow> = touched
            .iter()
            .filter_map(|id| rows.get(id).cloned().flatten())
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let mut upsert =
            QueryBuilder::<Postgres>::new(format!("INSERT INTO conversations ({COLUMNS}) "));
        upsert.push_values(&rows, |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.tenant_id)
                .push_bind(r.contact_id)
                .push_bind(&r.channel)
                .push_bind(r.integration_account_id)
                .push_bind(&r.status)
                .push_bind(r.assigned_agent_id)
                .push_bind(r.division_id)
                .push_bind(&r.tags)
                .push_bind(r.unread_count)
                .push_bind(r.ai_active)
                .push_bind(r.ai_agent_id)
                .push_bind(r.last_message_at)
                .push_bind(&r.last_message_preview)
                .push_bind(r.last_customer_message_at)
                .push_bind(r.resolved_at)
                .push_bind(r.created_at)
                .push_bind(r.updated_at);
        });
        upsert.push(
            " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, assigned_agent_id = EXCLUDED.assigned_agent_id,
              division_id = EXCLUDED.division_id, tags = EXCLUDED.tags, unread_count = EXCLUDED.unread_count,
              ai_active = EXCLUDED.ai_active, ai_agent_id = EXCLUDED.ai_agent_id, last_message_at = EXCLUDED.last_message_at,
              last_message_preview = EXCLUDED.last_message_preview, last_customer_message_at = EXCLUDED.last_customer_message_at,
              resolved_at = EXCLUDED.resolved_at, updated_at = EXCLUDED.updated_at",
        );
        upsert.build().execute(&mut *conn).await?;
        Ok(())
    }
}
