//! `POST /api/conversations`: an agent messages a customer first, through a template.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use omnistream_commands::conversation::start::{self, Recipient};
use omnistream_commands::conversation::ConversationDeps;
use omnistream_commands::store::ContactService;
use omnistream_domain::{contact, PhoneNumber};
use omnistream_projections::{InboxProjector, Projector};
use sqlx::PgPool;

use super::commands::{command_context, service_error};
use super::dto::{StartConversationRequest, StartConversationResponse};
use super::read::{load_visible, wait_for, wait_for_inbox};
use crate::api::messages::{queue_message, SendMessageRequest};
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::ValidJson;

/// Start a conversation with a template
#[utoipa::path(
    post, path = "/api/conversations", tag = "Conversations", request_body = StartConversationRequest,
    responses((status = 201, description = "An existing conversation for that contact and account is reused", body = StartConversationResponse),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 422, description = "invalid_integration_account or invalid_contact", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn start_conversation(
    State(pool): State<PgPool>,
    State(deps): State<ConversationDeps>,
    State(contacts): State<ContactService>,
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
        &deps,
        &contacts,
        &command_context(&caller),
        body.integration_account_id,
        recipient,
    )
    .await
    .map_err(service_error)?;
    let conversation_id = opened.conversation_id;
    let inbox: [&dyn Projector; 1] = [&InboxProjector];
    wait_for(
        &pool,
        &inbox,
        contact::AGGREGATE_TYPE,
        tenant,
        opened.contact_id,
    )
    .await?;
    wait_for_inbox(&pool, tenant, conversation_id).await?;
    let conversation = load_visible(&pool, &caller, conversation_id).await?;
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
    let message = queue_message(&deps, &caller, &conversation, request).await?;
    let conversation = load_visible(&pool, &caller, conversation_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(StartConversationResponse {
            conversation,
            message,
        }),
    ))
}
