//! From an API caller to a command, and back: the command context a caller's request carries,
//! and the API errors of a refused conversation command or service.

use omnistream_commands::conversation::ServiceError;
use omnistream_commands::store::{AgentActor, CommandContext, CommandError};
use omnistream_domain::conversation::ConversationError;

use crate::http::auth::{Caller, Credential};
use crate::http::error::{ApiError, Violations};

/// The command context of an API caller: the actor, and the request id that every event of the
/// request carries (contract, "Extensions": audit).
pub(crate) fn command_context(caller: &Caller) -> CommandContext {
    let (actor_type, actor_id) = match caller.credential {
        Credential::Session(_) => ("agent", caller.agent_id.to_string()),
        Credential::ApiKey(key) => ("api_key", key.to_string()),
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
fn command_error(error: CommandError<ConversationError>) -> ApiError {
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
