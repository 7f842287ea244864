//! Conversations tag (and Transfers, and the conversation extensions): the inbox.
//!
//! Reads come from the inbox read model; every change is a command on the Conversation
//! aggregate, after which the handler waits for the inbox projection (read-your-writes).

mod actions;
mod audit;
mod bulk;
mod start;
mod transfers;

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_commands::conversation::ServiceError;
use omnistream_commands::store::{AgentActor, CommandContext, CommandError};
use omnistream_domain::conversation::{ConversationError, ConversationStatus};
use omnistream_domain::{Channel, Permission, StreamId, TenantId};
use omnistream_projections::inbox::ConversationRow;
use omnistream_projections::InboxProjector;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub use actions::check_tags;

use crate::app::AppState;
use crate::http::auth::{perm, Authorized, Caller};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{check_text, PageRequest, Paginated, ValidQuery, Validate};

/// The contact part of [`ConversationWithContact`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationContact {
    pub id: Uuid,
    pub name: String,
    pub phone_number: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    pub tags: Vec<String>,
}

/// `ConversationWithContact`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConversationWithContact {
    pub id: Uuid,
    pub contact_id: Uuid,
    /// `whatsapp`, `instagram`, `email` or `messenger`.
    pub channel: String,
    pub integration_account_id: Option<Uuid>,
    /// `open`, `pending`, `resolved`, `closed` or `expired`.
    pub status: String,
    pub assigned_agent_id: Option<Uuid>,
    pub assigned_agent_name: Option<String>,
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
    pub contact: ConversationContact,
}

#[derive(sqlx::FromRow)]
struct ConversationDbRow {
    #[sqlx(flatten)]
    conversation: ConversationRow,
    assigned_agent_name: Option<String>,
    contact_name: String,
    contact_phone_number: Option<String>,
    contact_email: Option<String>,
    contact_avatar_url: Option<String>,
    contact_tags: Vec<String>,
}

impl ConversationWithContact {
    /// The API shape of an inbox row, with its assignee's name and its contact.
    pub(crate) fn compose(
        row: ConversationRow,
        assigned_agent_name: Option<String>,
        contact: ConversationContact,
    ) -> Self {
        Self {
            id: row.id,
            contact_id: row.contact_id,
            channel: row.channel,
            integration_account_id: row.integration_account_id,
            status: row.status,
            assigned_agent_id: row.assigned_agent_id,
            assigned_agent_name,
            division_id: row.division_id,
            tags: row.tags,
            unread_count: row.unread_count,
            ai_active: row.ai_active,
            ai_agent_id: row.ai_agent_id,
            last_message_at: row.last_message_at,
            last_message_preview: row.last_message_preview,
            last_customer_message_at: row.last_customer_message_at,
            resolved_at: row.resolved_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            contact,
        }
    }
}

impl From<ConversationDbRow> for ConversationWithContact {
    fn from(row: ConversationDbRow) -> Self {
        let contact = ConversationContact {
            id: row.conversation.contact_id,
            name: row.contact_name,
            phone_number: row.contact_phone_number,
            email: row.contact_email,
            avatar_url: row.contact_avatar_url,
            tags: row.contact_tags,
        };
        Self::compose(row.conversation, row.assigned_agent_name, contact)
    }
}

/// `FROM` and the tenant filter of every conversation read; callers add conditions.
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

/// Restricts `c` to the conversations `caller` may see (contract 0.3, visibility rule).
pub(crate) fn push_visibility(builder: &mut QueryBuilder<'_, Postgres>, caller: &Caller) {
    builder
        .push(" AND c.tenant_id = ")
        .push_bind(caller.tenant_id.as_uuid());
    if !caller.holds(Permission::ConversationsViewAll) {
        let me = caller.agent_id.as_uuid();
        builder
            .push(" AND (c.assigned_agent_id = ")
            .push_bind(me)
            .push(" OR (c.assigned_agent_id IS NULL AND (c.division_id IS NULL OR c.division_id IN (SELECT division_id FROM agent_divisions WHERE agent_id = ")
            .push_bind(me)
            .push("))))");
    }
}

/// Runs a conversation query built on [`CONVERSATION_SELECT`].
pub(crate) async fn fetch_conversations(
    mut builder: QueryBuilder<'_, Postgres>,
    pool: &sqlx::PgPool,
) -> Result<Vec<ConversationWithContact>> {
    let rows = builder
        .build_query_as::<ConversationDbRow>()
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One conversation visible to `caller`, or 404.
pub(crate) async fn load_visible(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
) -> Result<ConversationWithContact> {
    let mut builder = QueryBuilder::<Postgres>::new(CONVERSATION_SELECT);
    builder.push(" WHERE c.id = ").push_bind(id);
    push_visibility(&mut builder, caller);
    builder
        .build_query_as::<ConversationDbRow>()
        .fetch_optional(conn)
        .await?
        .map(ConversationWithContact::from)
        .ok_or(ApiError::NotFound)
}

/// The command context of an API caller: the actor, and the request id that every event of the
/// request carries (contract, "Extensions": audit).
pub(crate) fn command_context(caller: &Caller) -> CommandContext {
    let (actor_type, actor_id) = match caller.credential {
        crate::http::auth::Credential::Session(_) => ("agent", caller.agent_id.to_string()),
        crate::http::auth::Credential::ApiKey(key) => ("api_key", key.to_string()),
    };
    CommandContext {
        tenant_id: caller.tenant_id,
        actor_type,
        actor_id: Some(actor_id),
        request_id: caller.origin.request_id.clone(),
        causation_id: None,
        correlation_id: None,
        agent: Some(AgentActor {
            id: caller.agent_id.as_uuid(),
            name: caller.agent_name.clone(),
            permissions: caller.permissions().to_vec(),
            ip: caller.origin.ip.clone(),
            user_agent: caller.origin.user_agent.clone(),
        }),
        activity_action: None,
    }
}

/// Maps a command failure to the API's errors.
pub(crate) fn command_error(error: CommandError<ConversationError>) -> ApiError {
    match error {
        CommandError::Rule(ConversationError::NotOpened) => ApiError::NotFound,
        CommandError::Rule(ConversationError::MessagingWindowClosed) => ApiError::unprocessable(
            "messaging_window_closed",
            "the customer-service window is closed: only template messages can be sent",
        ),
        CommandError::Rule(ConversationError::UnknownMessage) => ApiError::NotFound,
        CommandError::Rule(ConversationError::MessageNotFailed) => {
            ApiError::conflict("message_not_failed", "only failed messages can be retried")
        }
        CommandError::Rule(ConversationError::ExpiredIsSystemOnly) => {
            ApiError::invalid_field("status", "`expired` is set only by expiry")
        }
        CommandError::Rule(ConversationError::AssignedToAnotherAgent) => ApiError::Forbidden {
            code: "forbidden",
            message: "the conversation is assigned to another agent".into(),
        },
        CommandError::Contention => ApiError::Status {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "service_unavailable",
            message: "the conversation is too busy right now; retry".into(),
        },
        CommandError::Store(cause) => ApiError::Internal(anyhow::anyhow!(cause)),
    }
}

/// Maps a conversation service's failure to the API's errors.
pub(crate) fn service_error(error: ServiceError) -> ApiError {
    match error {
        ServiceError::Command(error) => command_error(error),
        ServiceError::InvalidField { field, message } => {
            ApiError::Validation(Violations::single(field, message))
        }
        ServiceError::Unprocessable { code, message } => ApiError::unprocessable(code, message),
        ServiceError::NotFound => ApiError::NotFound,
        ServiceError::Forbidden { code, message } => ApiError::Forbidden {
            code,
            message: message.into(),
        },
        ServiceError::Database(error) => error.into(),
        other => ApiError::Internal(other.into()),
    }
}

/// Read-your-writes after an agent's action: waits until the inbox shows conversation `id`'s
/// latest event and the activity log holds its row.
pub(crate) async fn wait_for_change(state: &AppState, tenant: TenantId, id: Uuid) -> Result<()> {
    wait_for_inbox(state, tenant, id).await?;
    let stream = StreamId::new(tenant, id).to_string();
    omnistream_projections::wait_until_applied(
        &state.pool,
        &omnistream_projections::ActivityProjector,
        omnistream_domain::conversation::AGGREGATE_TYPE,
        &stream,
        Duration::from_secs(5),
    )
    .await?;
    Ok(())
}

/// Read-your-writes: waits for the inbox projection to show conversation `id`'s latest event.
pub(crate) async fn wait_for_inbox(state: &AppState, tenant: TenantId, id: Uuid) -> Result<()> {
    let stream = StreamId::new(tenant, id).to_string();
    omnistream_projections::wait_until_applied(
        &state.pool,
        &InboxProjector,
        omnistream_domain::conversation::AGGREGATE_TYPE,
        &stream,
        Duration::from_secs(5),
    )
    .await?;
    Ok(())
}

/// Filters of `GET /api/conversations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    /// `open`, `pending`, `resolved`, `closed` or `expired`.
    status: Option<String>,
    channel: Option<String>,
    /// An agent id, `me` or `unassigned`.
    assigned_agent_id: Option<String>,
    division_id: Option<Uuid>,
    integration_account_id: Option<Uuid>,
    tag: Option<String>,
    /// Case-insensitive substring of the contact's name, phone or email.
    q: Option<String>,
}

impl Validate for ConversationListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        PageRequest::checked(self.page, self.per_page, 20, 100, violations);
        if self
            .status
            .as_deref()
            .is_some_and(|s| s.parse::<ConversationStatus>().is_err())
        {
            violations.add(
                "status",
                "must be open, pending, resolved, closed or expired",
            );
        }
        if self
            .channel
            .as_deref()
            .is_some_and(|c| c.parse::<Channel>().is_err())
        {
            violations.add("channel", "must be whatsapp, instagram, email or messenger");
        }
        if let Some(assignee) = &self.assigned_agent_id {
            if assignee != "me" && assignee != "unassigned" && Uuid::parse_str(assignee).is_err() {
                violations.add("assigned_agent_id", "must be a UUID, `me` or `unassigned`");
            }
        }
        for (field, value) in [("tag", &mut self.tag), ("q", &mut self.q)] {
            if let Some(text) = value {
                check_text(violations, field, text, 0, 200);
            }
        }
    }
}

/// Escapes LIKE wildcards in user input.
pub(crate) fn like_pattern(text: &str) -> String {
    format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

/// List conversations
#[utoipa::path(
    get, path = "/api/conversations", tag = "Conversations", params(ConversationListQuery),
    responses((status = 200, description = "Newest activity first; only conversations visible to the caller", body = Paginated<ConversationWithContact>),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_conversations(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    ValidQuery(query): ValidQuery<ConversationListQuery>,
) -> Result<Json<Paginated<ConversationWithContact>>> {
    let page = PageRequest::checked(
        query.page,
        query.per_page,
        20,
        100,
        &mut Violations::default(),
    );
    let filtered = |select: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(select);
        builder.push(" WHERE true");
        push_visibility(&mut builder, &caller);
        if let Some(status) = &query.status {
            builder.push(" AND c.status = ").push_bind(status.clone());
        }
        if let Some(channel) = &query.channel {
            builder.push(" AND c.channel = ").push_bind(channel.clone());
        }
        match query.assigned_agent_id.as_deref() {
            Some("me") => {
                builder
                    .push(" AND c.assigned_agent_id = ")
                    .push_bind(caller.agent_id.as_uuid());
            }
            Some("unassigned") => {
                builder.push(" AND c.assigned_agent_id IS NULL");
            }
            Some(id) => {
                builder
                    .push(" AND c.assigned_agent_id = ")
                    .push_bind(Uuid::parse_str(id).unwrap_or_default());
            }
            None => {}
        }
        if let Some(division) = query.division_id {
            builder.push(" AND c.division_id = ").push_bind(division);
        }
        if let Some(account) = query.integration_account_id {
            builder
                .push(" AND c.integration_account_id = ")
                .push_bind(account);
        }
        if let Some(tag) = query.tag.as_deref().filter(|t| !t.is_empty()) {
            builder
                .push(" AND ")
                .push_bind(tag.to_lowercase())
                .push(" = ANY(c.tags)");
        }
        if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
            let pattern = like_pattern(q);
            builder
                .push(" AND (ct.name ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR ct.phone_number ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR ct.email ILIKE ")
                .push_bind(pattern)
                .push(")");
        }
        builder
    };
    let counting = "SELECT count(*) FROM conversations c LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id";
    let total: i64 = filtered(counting)
        .build_query_scalar()
        .fetch_one(&state.pool)
        .await?;
    let mut rows = filtered(CONVERSATION_SELECT);
    rows.push(" ORDER BY c.last_message_at DESC NULLS LAST, c.id LIMIT ")
        .push_bind(page.limit())
        .push(" OFFSET ")
        .push_bind(page.offset());
    let data = rows
        .build_query_as::<ConversationDbRow>()
        .fetch_all(&state.pool)
        .await?;
    Ok(Json(Paginated::new(
        data.into_iter().map(Into::into).collect(),
        total,
        page,
    )))
}

/// Routes of the Conversations and Transfers tags and the conversation extensions.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations, start::start_conversation))
        .routes(routes!(audit::get_conversation))
        .routes(routes!(audit::conversation_events))
        .routes(routes!(actions::assign))
        .routes(routes!(actions::update_status))
        .routes(routes!(actions::mark_read))
        .routes(routes!(transfers::expire))
        .routes(routes!(actions::update_tags))
        .routes(routes!(transfers::takeover))
        .routes(routes!(bulk::bulk))
        .routes(routes!(transfers::transfer))
        .routes(routes!(transfers::list_transfers))
}
