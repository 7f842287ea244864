//! `POST /api/conversations`: an agent messages a customer first, through a template.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnistream_commands::conversation::start::{self, Recipient};
use omnistream_domain::{PhoneNumber, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    command_context, load_visible, service_error, wait_for_inbox, ConversationWithContact,
};
use crate::api::messages::{queue_message, Message, SendMessageRequest};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{ValidJson, Validate};

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
    let recipient = match (&body.phone_number, body.contact_id) {
        (Some(phone), _) => Recipient::Phone(
            PhoneNumber::parse(phone)
                .map_err(|e| ApiError::invalid_field("phone_number", e.to_string()))?,
        ),
        (None, Some(id)) => Recipient::Contact(id),
        (None, None) => {
            return Err(ApiError::invalid_field(
                "phone_number",
                "give phone_number or contact_id",
            ))
        }
    };
    let opened = start::open(
        &state.conversation,
        &state.contacts,
        &command_context(&caller),
        body.integration_account_id,
        recipient,
    )
    .await
    .map_err(service_error)?;
    let conversation_id = opened.conversation_id;
    let contact_stream = StreamId::new(tenant, opened.contact_id).to_string();
    omnistream_projections::wait_until_applied(
        &state.pool,
        &omnistream_projections::InboxProjector,
        omnistream_domain::contact::AGGREGATE_TYPE,
        &contact_stream,
        std::time::Duration::from_secs(5),
    )
    .await?;
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
