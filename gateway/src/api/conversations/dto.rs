//! Request and response bodies of the Conversations and Transfers tags, and their validation.

use chrono::{DateTime, Utc};
use omnistream_commands::conversation::bulk::BulkAction;
use omnistream_domain::conversation::{policy, ConversationStatus};
use omnistream_domain::AgentId;
use omnistream_domain::{Channel, PhoneNumber};
use omnistream_projections::inbox::queries::{Assignee, ConversationFilter, InboxRow, TransferRow};
use omnistream_projections::inbox::ConversationRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::messages::Message;
use crate::http::error::{ApiError, Result, Violations};
use crate::http::extract::Paged;
use crate::http::extract::{check_optional_text, check_text, nullable, Validate};

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

impl From<InboxRow> for ConversationWithContact {
    fn from(row: InboxRow) -> Self {
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

/// Filters of `GET /api/conversations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationListQuery {
    pub(super) page: Option<i64>,
    pub(super) per_page: Option<i64>,
    /// `open`, `pending`, `resolved`, `closed` or `expired`.
    pub(super) status: Option<String>,
    pub(super) channel: Option<String>,
    /// An agent id, `me` or `unassigned`.
    pub(super) assigned_agent_id: Option<String>,
    pub(super) division_id: Option<Uuid>,
    pub(super) integration_account_id: Option<Uuid>,
    pub(super) tag: Option<String>,
    /// Case-insensitive substring of the contact's name, phone or email.
    pub(super) q: Option<String>,
}

impl Paged for ConversationListQuery {
    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for ConversationListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        self.check_paging(violations);
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

impl ConversationListQuery {
    /// The read model's filter for these (validated) parameters; `me` is agent `me`.
    pub(super) fn filter(&self, me: AgentId) -> ConversationFilter {
        ConversationFilter {
            contact_id: None,
            status: self.status.as_deref().and_then(|s| s.parse().ok()),
            channel: self.channel.as_deref().and_then(|c| c.parse().ok()),
            assignee: self
                .assigned_agent_id
                .as_deref()
                .map(|assignee| match assignee {
                    "me" => Assignee::Agent(me.as_uuid()),
                    "unassigned" => Assignee::Unassigned,
                    id => Assignee::Agent(Uuid::parse_str(id).unwrap_or_default()),
                }),
            division_id: self.division_id,
            integration_account_id: self.integration_account_id,
            tag: self.tag.clone(),
            contact_text: self.q.clone(),
        }
    }
}

/// `AssignAgentRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignAgentRequest {
    /// `null` unassigns.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub(super) agent_id: Option<Option<Uuid>>,
}

impl Validate for AssignAgentRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self.agent_id.is_none() {
            violations.add("agent_id", "is required (null unassigns)");
        }
    }
}

/// `UpdateStatusRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStatusRequest {
    /// `open`, `pending`, `resolved` or `closed`.
    pub(super) status: String,
}

impl Validate for UpdateStatusRequest {
    fn validate(&mut self, violations: &mut Violations) {
        match self.status.parse::<ConversationStatus>() {
            Ok(ConversationStatus::Expired) => {
                violations.add("status", "`expired` is set only by expiry")
            }
            Ok(_) => {}
            Err(_) => violations.add("status", "must be open, pending, resolved or closed"),
        }
    }
}

/// Result of marking a conversation read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkReadResponse {
    pub conversation_id: Uuid,
    /// Always 0.
    pub unread_count: i32,
}

/// Normalises `tags` in place by the tag policy (trimmed, lower-cased, 1..50 characters, at
/// most 20, no duplicates), or reports why they are refused.
pub fn check_tags(violations: &mut Violations, field: &str, tags: &mut Vec<String>) {
    match policy::tags::normalise(tags) {
        Ok(normalised) => *tags = normalised,
        Err(error) => violations.add(field, error.to_string()),
    }
}

/// `UpdateTagsRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTagsRequest {
    /// Replaces the whole set.
    pub(super) tags: Vec<String>,
}

impl Validate for UpdateTagsRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_tags(violations, "tags", &mut self.tags);
    }
}

/// Optional body of `POST /api/conversations/expire`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpireRequest {
    /// Only this channel's rule.
    #[serde(default)]
    pub(super) channel: Option<String>,
}

impl Validate for ExpireRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self
            .channel
            .as_deref()
            .is_some_and(|c| c.parse::<Channel>().is_err())
        {
            violations.add("channel", "must be whatsapp, instagram, email or messenger");
        }
    }
}

/// Result of an expiry run.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpireResponse {
    pub expired: usize,
    pub conversation_ids: Vec<Uuid>,
}

/// `TransferConversationRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferConversationRequest {
    #[serde(default)]
    pub(super) to_agent_id: Option<Uuid>,
    #[serde(default)]
    pub(super) to_division_id: Option<Uuid>,
    /// At most 500 characters.
    #[serde(default)]
    pub(super) reason: Option<String>,
}

impl Validate for TransferConversationRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self.to_agent_id.is_none() && self.to_division_id.is_none() {
            violations.add("to_agent_id", "give to_agent_id, to_division_id or both");
        }
        check_optional_text(violations, "reason", &mut self.reason, 500);
    }
}

/// `ConversationTransfer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationTransfer {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// `transfer` or `takeover`.
    #[serde(rename = "type")]
    pub kind: String,
    pub from_agent_id: Option<Uuid>,
    pub to_agent_id: Option<Uuid>,
    pub from_division_id: Option<Uuid>,
    pub to_division_id: Option<Uuid>,
    pub reason: Option<String>,
    pub transferred_by: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<TransferRow> for ConversationTransfer {
    fn from(row: TransferRow) -> Self {
        Self {
            id: row.id,
            conversation_id: row.conversation_id,
            kind: row.kind,
            from_agent_id: row.from_agent_id,
            to_agent_id: row.to_agent_id,
            from_division_id: row.from_division_id,
            to_division_id: row.to_division_id,
            reason: row.reason,
            transferred_by: row.transferred_by,
            created_at: row.created_at,
        }
    }
}

/// `BulkConversationRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkConversationRequest {
    /// 1..100 ids.
    pub(super) conversation_ids: Vec<Uuid>,
    /// `assign`, `unassign`, `update_status`, `add_tags`, `remove_tags` or `mark_read`.
    pub(super) action: String,
    #[serde(default)]
    agent_id: Option<Uuid>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Validate for BulkConversationRequest {
    fn validate(&mut self, violations: &mut Violations) {
        if self.conversation_ids.is_empty() || self.conversation_ids.len() > 100 {
            violations.add("conversation_ids", "must have between 1 and 100 items");
        }
        match self.action.as_str() {
            "assign" if self.agent_id.is_none() => {
                violations.add("agent_id", "is required for assign")
            }
            "update_status" => match self.status.as_deref().map(str::parse::<ConversationStatus>) {
                Some(Ok(ConversationStatus::Expired)) => {
                    violations.add("status", "`expired` is set only by expiry")
                }
                Some(Ok(_)) => {}
                _ => violations.add(
                    "status",
                    "is required for update_status: open, pending, resolved or closed",
                ),
            },
            "add_tags" | "remove_tags" => match &mut self.tags {
                Some(tags) if !tags.is_empty() => check_tags(violations, "tags", tags),
                _ => violations.add("tags", "is required for add_tags and remove_tags"),
            },
            "assign" | "unassign" | "mark_read" => {}
            _ => violations.add(
                "action",
                "must be assign, unassign, update_status, add_tags, remove_tags or mark_read",
            ),
        }
    }
}

impl BulkConversationRequest {
    /// The validated action as the bulk service takes it.
    pub(super) fn bulk_action(&self) -> Result<BulkAction> {
        Ok(match self.action.as_str() {
            "assign" => BulkAction::Assign(
                self.agent_id
                    .ok_or_else(|| ApiError::invalid_field("agent_id", "is required for assign"))?,
            ),
            "unassign" => BulkAction::Unassign,
            "update_status" => BulkAction::UpdateStatus(
                self.status
                    .as_deref()
                    .unwrap_or_default()
                    .parse()
                    .map_err(|_| ApiError::invalid_field("status", "unknown"))?,
            ),
            "add_tags" => BulkAction::AddTags(self.tags.clone().unwrap_or_default()),
            "remove_tags" => BulkAction::RemoveTags(self.tags.clone().unwrap_or_default()),
            _ => BulkAction::MarkRead,
        })
    }
}

/// One failed item of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkFailure {
    pub id: Uuid,
    #[schema(value_type = Object)]
    pub error: Value,
}

/// Result of a bulk action.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkResponse {
    pub action: String,
    pub requested: usize,
    pub updated: usize,
    pub failed: Vec<BulkFailure>,
}

/// Body of `POST /api/conversations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartConversationRequest {
    /// An active WhatsApp integration account of the organization.
    pub(super) integration_account_id: Uuid,
    /// The customer's number (digits; `+`, spaces and dashes are stripped). Or `contact_id`.
    #[serde(default)]
    pub(super) phone_number: Option<String>,
    #[serde(default)]
    pub(super) contact_id: Option<Uuid>,
    /// Meta's template-message object {name, language, components}.
    #[schema(value_type = Object)]
    pub(super) template: Value,
}

impl Validate for StartConversationRequest {
    fn validate(&mut self, violations: &mut Violations) {
        match (&self.phone_number, &self.contact_id) {
            (None, None) => violations.add("phone_number", "give phone_number or contact_id"),
            (Some(_), Some(_)) => {
                violations.add("contact_id", "give phone_number or contact_id, not both")
            }
            (Some(phone), None) => match PhoneNumber::parse(phone) {
                Ok(digits) => self.phone_number = Some(digits.to_string()),
                Err(invalid) => violations.add("phone_number", invalid.to_string()),
            },
            (None, Some(_)) => {}
        }
        let template = self.template.as_object();
        if !template.is_some_and(|t| {
            t.get("name").is_some_and(Value::is_string) && t.contains_key("language")
        }) {
            violations.add(
                "template",
                "must be Meta's template-message object with name and language",
            );
        }
    }
}

/// The new (or reused) conversation and the queued template message.
#[derive(Debug, Serialize, ToSchema)]
pub struct StartConversationResponse {
    pub conversation: ConversationWithContact,
    pub message: Message,
}

/// `?as_of=` of `GET /api/conversations/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// RFC 3339: the conversation as it was at that time, rebuilt from its events.
    pub(super) as_of: Option<String>,
}

impl Validate for AsOfQuery {
    fn validate(&mut self, violations: &mut Violations) {
        if self
            .as_of
            .as_deref()
            .is_some_and(|t| DateTime::parse_from_rfc3339(t).is_err())
        {
            violations.add("as_of", "must be an RFC 3339 timestamp");
        }
    }
}

/// Who caused an event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventMetadata {
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub request_id: Option<String>,
    pub causation_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl EventMetadata {
    /// The known keys of a stored event's metadata.
    pub(super) fn of(metadata: &Value) -> Self {
        let text = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Self {
            actor_type: text("actor_type"),
            actor_id: text("actor_id"),
            request_id: text("request_id"),
            causation_id: text("causation_id"),
            correlation_id: text("correlation_id"),
        }
    }
}

/// One stored event of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationEventRecord {
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub metadata: EventMetadata,
    pub recorded_at: DateTime<Utc>,
}

/// Pagination of the event history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    pub(super) page: Option<i64>,
    /// 1..100, default 50.
    pub(super) per_page: Option<i64>,
}

impl Paged for EventsQuery {
    const DEFAULT_PER_PAGE: u32 = 50;

    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for EventsQuery {
    fn validate(&mut self, violations: &mut Violations) {
        self.check_paging(violations);
    }
}
