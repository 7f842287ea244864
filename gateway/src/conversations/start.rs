//! `POST /api/conversations`: an agent messages a customer first, through a template.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use omnistream_commands::service::ids;
use omnistream_domain::contact::ContactCommand;
use omnistream_domain::conversation::{ConversationCommand, OpenConversation};
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    command_context, command_error, load_visible, wait_for_inbox, ConversationWithContact,
};
use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ErrorResponse, Result, Violations};
use crate::extract::{ValidJson, Validate};
use crate::messages::{queue_message, Message, SendMessageRequest};

/// Body of `POST /api/conversations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartConversationRequest {
    /// An active WhatsApp integration account of the organization.
    integration_account_id: Uuid,
    /// The customer's number (digits; `+`, spaces and dashes are stripped). Or `contact_id`.
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    contact_id: Option<Uuid>,
    /// Meta's template-message object {name, language, components}.
    #[schema(value_type = Object)]
    template: Value,
}

/// Digits of a phone number in international form, or `None` when it is not one.
pub fn normalise_phone(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .filter(|c| !matches!(c, '+' | ' ' | '-' | '(' | ')'))
        .collect();
    (digits.len() >= 7 && digits.len() <= 15 && digits.chars().all(|c| c.is_ascii_digit()))
        .then_some(digits)
}

impl Validate for StartConversationRequest {
    fn validate(&mut self, violations: &mut Violations) {
        match (&self.phone_number, &self.contact_id) {
            (None, None) => violations.add("phone_number", "give phone_number or contact_id"),
            (Some(_), Some(_)) => {
                violations.add("contact_id", "give phone_number or contact_id, not both")
            }
            (Some(phone), None) => match normalise_phone(phone) {
                Some(digits) => self.phone_number = Some(digits),
                None => violations.add(
                    "phone_number",
                    "must be an international number of 7 to 15 digits",
                ),
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

#[derive(sqlx::FromRow)]
struct Account {
    id: Uuid,
    division_id: Option<Uuid>,
}

/// Start a conversation with a template
#[utoipa::path(
    post, path = "/api/conversations", tag = "Conversations", request_body = StartConversationRequest,
    responses((status = 201, description = "An existing conversation for that contact and account is reused", body = StartConversationResponse),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 422, description = "invalid_integration_account or invalid_contact", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn start_conversation(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsReply>,
    ValidJson(body): ValidJson<StartConversationRequest>,
) -> Result<(StatusCode, Json<StartConversationResponse>)> {
    let tenant = caller.tenant_id;
    let account: Account = sqlx::query_as(
        "SELECT id, division_id FROM integration_accounts WHERE tenant_id = $1 AND id = $2 AND channel = 'whatsapp' AND is_active",
    )
    .bind(tenant.as_uuid())
    .bind(body.integration_account_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::unprocessable("invalid_integration_account", "not an active WhatsApp account of this organization"))?;
    let contact_id = match (&body.phone_number, body.contact_id) {
        (Some(phone), _) => {
            let id = ids::contact(tenant, Channel::Whatsapp, phone);
            let identity = ContactCommand::RecordIdentity {
                tenant_id: tenant.as_uuid(),
                channel: Channel::Whatsapp,
                external_id: phone.clone(),
                profile_name: None,
                phone_number: Some(phone.clone()),
                at: Utc::now(),
            };
            state
                .contacts
                .execute(&command_context(&caller), id, identity)
                .await
                .map_err(|error| ApiError::Internal(anyhow::anyhow!(error.to_string())))?;
            let stream = omnistream_domain::StreamId::new(tenant, id).to_string();
            omnistream_projections::wait_until_applied(
                &state.pool,
                &omnistream_projections::InboxProjector,
                omnistream_domain::contact::AGGREGATE_TYPE,
                &stream,
                std::time::Duration::from_secs(5),
            )
            .await?;
            id
        }
        (None, Some(id)) => {
            let wa_id: Option<Option<String>> =
                sqlx::query_scalar("SELECT wa_id FROM contacts WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_uuid())
                    .bind(id)
                    .fetch_optional(&state.pool)
                    .await?;
            match wa_id {
                Some(Some(_)) => id,
                _ => {
                    return Err(ApiError::unprocessable(
                        "invalid_contact",
                        "the contact does not exist or has no WhatsApp number",
                    ))
                }
            }
        }
        (None, None) => {
            return Err(ApiError::invalid_field(
                "phone_number",
                "give phone_number or contact_id",
            ))
        }
    };
    let conversation_id = ids::conversation(tenant, account.id, contact_id);
    let open = OpenConversation {
        conversation_id,
        tenant_id: tenant.as_uuid(),
        channel: Channel::Whatsapp,
        integration_account_id: account.id,
        contact_id,
        division_id: account.division_id,
        at: Utc::now(),
    };
    state
        .conversations
        .execute(
            &command_context(&caller),
            conversation_id,
            ConversationCommand::Open(open),
        )
        .await
        .map_err(command_error)?;
    wait_for_inbox(&state, tenant, conversation_id).await?;
    let conversation =
        load_visible(&mut *state.pool.acquire().await?, &caller, conversation_id).await?;
    let request = SendMessageRequest {
        message_type: Some("template".into()),
        content: None,
        media_id: None,
        media_url: None,
        filename: None,
        template: Some(body.template),
        subject: None,
        reply_to_message_id: None,
    };
    let message = queue_message(&state, &caller, &conversation, request).await?;
    let conversation =
        load_visible(&mut *state.pool.acquire().await?, &caller, conversation_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(StartConversationResponse {
            conversation,
            message,
        }),
    ))
}
