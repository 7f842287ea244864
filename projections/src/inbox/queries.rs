//! Reads of the inbox read model: conversations with their contact and assignee's name, as an
//! agent may see them, and their transfer history.
//!
//! Every query is scoped to one tenant; the ones that list or load conversations for an agent
//! also apply the visibility rule ([`push_visible_to`]).

use chrono::{DateTime, Utc};
use omnistream_domain::conversation::ConversationStatus;
use omnistream_domain::{AgentId, Channel, TenantId};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::ConversationRow;
use crate::sql::{fetch_page, like_pattern, Page, Window};

/// The agent reading the inbox, as visibility needs it (its divisions are looked up in SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    /// The agent.
    pub agent_id: AgentId,
    /// Whether it holds `conversations.view_all`.
    pub sees_all: bool,
}

/// Restricts the conversations aliased `c` to `tenant`'s, and to those `viewer` may see.
///
/// This is the SQL form of [`omnistream_domain::conversation::policy::visibility::may_see`]
/// (contract 0.3, visibility rule): `conversations.view_all` sees everything; otherwise the
/// assignee, and, while unassigned, the members of its division (everyone when it has none).
/// A change to one must be made to the other.
pub fn push_visible_to(builder: &mut QueryBuilder<'_, Postgres>, tenant: TenantId, viewer: Viewer) {
    builder
        .push(" AND c.tenant_id = ")
        .push_bind(tenant.as_uuid());
    if !viewer.sees_all {
        let me = viewer.agent_id.as_uuid();
        builder
            .push(" AND (c.assigned_agent_id = ")
            .push_bind(me)
            .push(" OR (c.assigned_agent_id IS NULL AND (c.division_id IS NULL OR c.division_id IN (SELECT division_id FROM agent_divisions WHERE agent_id = ")
            .push_bind(me)
            .push("))))");
    }
}

/// A conversation as the inbox shows it: its row, its assignee's name and its contact.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InboxRow {
    /// The conversation.
    #[sqlx(flatten)]
    pub conversation: ConversationRow,
    /// The assigned agent's name, if assigned.
    pub assigned_agent_name: Option<String>,
    /// The contact's name (empty when unknown).
    pub contact_name: String,
    /// The contact's phone number.
    pub contact_phone_number: Option<String>,
    /// The contact's email address.
    pub contact_email: Option<String>,
    /// The contact's avatar.
    pub contact_avatar_url: Option<String>,
    /// The contact's tags.
    pub contact_tags: Vec<String>,
}

/// The select list and joins of [`InboxRow`] over `conversations c`; callers add `WHERE` and
/// [`push_visible_to`]. Public for the inbox benchmark, which runs the same SQL directly.
pub const CONVERSATION_SELECT: &str = r#"
    SELECT c.id, c.tenant_id, c.contact_id, c.channel, c.integration_account_id, c.status, c.assigned_agent_id,
           ag.name AS assigned_agent_name, c.division_id, c.tags, c.unread_count, c.ai_active, c.ai_agent_id,
           c.last_message_at, c.last_message_preview, c.last_customer_message_at, c.resolved_at, c.created_at,
           c.updated_at, COALESCE(ct.name, '') AS contact_name, ct.phone_number AS contact_phone_number,
           ct.email AS contact_email, ct.avatar_url AS contact_avatar_url, COALESCE(ct.tags, '{}') AS contact_tags
    FROM conversations c
    LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id
    LEFT JOIN agents ag ON ag.id = c.assigned_agent_id AND ag.tenant_id = c.tenant_id
"#;

/// The count of a conversation list, with the contact join its search needs.
const CONVERSATION_COUNT: &str = "SELECT count(*) FROM conversations c \
    LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id";

/// Whom a listed conversation is assigned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignee {
    /// This agent.
    Agent(Uuid),
    /// Nobody.
    Unassigned,
}

/// Conditions of a conversation list; each one given narrows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationFilter {
    /// Only this contact's conversations.
    pub contact_id: Option<Uuid>,
    /// Only conversations in this status.
    pub status: Option<ConversationStatus>,
    /// Only conversations on this channel.
    pub channel: Option<Channel>,
    /// Only conversations assigned so.
    pub assignee: Option<Assignee>,
    /// Only conversations of this division.
    pub division_id: Option<Uuid>,
    /// Only conversations of this integration account.
    pub integration_account_id: Option<Uuid>,
    /// Only conversations carrying this tag (compared lower-cased; empty: no condition).
    pub tag: Option<String>,
    /// Only conversations whose contact's name, phone or email contains this text,
    /// case-insensitively (empty: no condition).
    pub contact_text: Option<String>,
}

impl ConversationFilter {
    fn push(&self, builder: &mut QueryBuilder<'_, Postgres>) {
        if let Some(contact) = self.contact_id {
            builder.push(" AND c.contact_id = ").push_bind(contact);
        }
        if let Some(status) = self.status {
            builder.push(" AND c.status = ").push_bind(status.as_str());
        }
        if let Some(channel) = self.channel {
            builder
                .push(" AND c.channel = ")
                .push_bind(channel.as_str());
        }
        match self.assignee {
            Some(Assignee::Agent(agent)) => {
                builder.push(" AND c.assigned_agent_id = ").push_bind(agent);
            }
            Some(Assignee::Unassigned) => {
                builder.push(" AND c.assigned_agent_id IS NULL");
            }
            None => {}
        }
        if let Some(division) = self.division_id {
            builder.push(" AND c.division_id = ").push_bind(division);
        }
        if let Some(account) = self.integration_account_id {
            builder
                .push(" AND c.integration_account_id = ")
                .push_bind(account);
        }
        if let Some(tag) = self.tag.as_deref().filter(|t| !t.is_empty()) {
            builder
                .push(" AND ")
                .push_bind(tag.to_lowercase())
                .push(" = ANY(c.tags)");
        }
        if let Some(text) = self.contact_text.as_deref().filter(|t| !t.is_empty()) {
            let pattern = like_pattern(text);
            builder
                .push(" AND (ct.name ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR ct.phone_number ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR ct.email ILIKE ")
                .push_bind(pattern)
                .push(")");
        }
    }
}

/// One page of the conversations of `tenant` that `viewer` may see and `filter` selects,
/// newest activity first.
#[tracing::instrument(skip(pool), level = "debug", err)]
pub async fn list_visible(
    pool: &PgPool,
    tenant: TenantId,
    viewer: Viewer,
    filter: &ConversationFilter,
    window: Window,
) -> Result<Page<InboxRow>, sqlx::Error> {
    let filtered = |prefix: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(prefix);
        builder.push(" WHERE true");
        push_visible_to(&mut builder, tenant, viewer);
        filter.push(&mut builder);
        builder
    };
    fetch_page(
        pool,
        filtered,
        CONVERSATION_COUNT,
        CONVERSATION_SELECT,
        "c.last_message_at DESC NULLS LAST, c.id",
        window,
    )
    .await
}

/// Conversation `id` of `tenant`, if `viewer` may see it.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn find_visible(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    viewer: Viewer,
    id: Uuid,
) -> Result<Option<InboxRow>, sqlx::Error> {
    let mut builder = QueryBuilder::<Postgres>::new(CONVERSATION_SELECT);
    builder.push(" WHERE c.id = ").push_bind(id);
    push_visible_to(&mut builder, tenant, viewer);
    builder
        .build_query_as::<InboxRow>()
        .fetch_optional(executor)
        .await
}

/// Whether conversation `id` of `tenant` exists and `viewer` may see it.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn is_visible(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    viewer: Viewer,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let mut builder =
        QueryBuilder::<Postgres>::new("SELECT EXISTS (SELECT 1 FROM conversations c WHERE c.id = ");
    builder.push_bind(id);
    push_visible_to(&mut builder, tenant, viewer);
    builder.push(")");
    builder.build_query_scalar().fetch_one(executor).await
}

/// The status the inbox shows for conversation `id` of `tenant` (`None`: no such conversation).
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn status_of(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM conversations WHERE tenant_id = $1 AND id = $2")
        .bind(tenant.as_uuid())
        .bind(id)
        .fetch_optional(executor)
        .await
}

/// A row of `conversation_transfers`: one transfer or takeover.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TransferRow {
    /// The transfer.
    pub id: Uuid,
    /// The conversation transferred.
    pub conversation_id: Uuid,
    /// `transfer` or `takeover`.
    #[sqlx(rename = "type")]
    pub kind: String,
    /// The assignee before.
    pub from_agent_id: Option<Uuid>,
    /// The assignee after.
    pub to_agent_id: Option<Uuid>,
    /// The division before.
    pub from_division_id: Option<Uuid>,
    /// The division it was sent to, if any.
    pub to_division_id: Option<Uuid>,
    /// Why, as the agent wrote it.
    pub reason: Option<String>,
    /// The agent who made it.
    pub transferred_by: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
}

const TRANSFER_COLUMNS: &str = "id, conversation_id, type, from_agent_id, to_agent_id, \
    from_division_id, to_division_id, reason, transferred_by, created_at";

/// Transfer `id` of `tenant`.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn find_transfer(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<TransferRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM conversation_transfers WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// The transfers and takeovers of conversation `conversation` of `tenant`, newest first.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn transfers_of(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    conversation: Uuid,
) -> Result<Vec<TransferRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TRANSFER_COLUMNS} FROM conversation_transfers WHERE tenant_id = $1 AND conversation_id = $2 \
         ORDER BY created_at DESC, id"
    ))
    .bind(tenant.as_uuid())
    .bind(conversation)
    .fetch_all(executor)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(sees_all: bool) -> Viewer {
        Viewer {
            agent_id: AgentId::new(),
            sees_all,
        }
    }

    #[test]
    fn view_all_is_scoped_to_the_tenant_only() {
        let mut builder = QueryBuilder::<Postgres>::new("WHERE true");
        push_visible_to(&mut builder, TenantId::new(), viewer(true));
        assert_eq!(builder.sql(), "WHERE true AND c.tenant_id = $1");
    }

    #[test]
    fn others_see_their_own_and_their_divisions_unassigned_conversations() {
        let mut builder = QueryBuilder::<Postgres>::new("WHERE true");
        push_visible_to(&mut builder, TenantId::new(), viewer(false));
        assert_eq!(
            builder.sql(),
            "WHERE true AND c.tenant_id = $1 AND (c.assigned_agent_id = $2 OR (c.assigned_agent_id IS NULL \
             AND (c.division_id IS NULL OR c.division_id IN (SELECT division_id FROM agent_divisions WHERE agent_id = $3))))"
        );
    }

    #[test]
    fn filters_are_bind_parameters() {
        let filter = ConversationFilter {
            status: Some(ConversationStatus::Open),
            assignee: Some(Assignee::Unassigned),
            tag: Some("VIP".into()),
            contact_text: Some("50%".into()),
            ..ConversationFilter::default()
        };
        let mut builder = QueryBuilder::<Postgres>::new("WHERE true");
        filter.push(&mut builder);
        assert_eq!(
            builder.sql(),
            "WHERE true AND c.status = $1 AND c.assigned_agent_id IS NULL AND $2 = ANY(c.tags) \
             AND (ct.name ILIKE $3 OR ct.phone_number ILIKE $4 OR ct.email ILIKE $5)"
        );
    }
}
