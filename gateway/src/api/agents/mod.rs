//! Agents tag: the people (and API keys' owners) who work a tenant's inbox. The router is here,
//! the handlers in [`handlers`], the bodies in [`dto`], and the SQL (the `agents` row with its
//! activity row, sessions and API keys revoked with it) in [`store`].

mod dto;
mod handlers;
mod store;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use handlers::*;

pub use dto::{AgentListQuery, AgentPublic, CreateAgent, UpdateAgent, UpdateAgentStatusRequest};
pub use store::{load_agent, revoke_api_keys, revoke_sessions, AGENT_PUBLIC_SELECT};

/// Routes of the Agents tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_agents, create_agent))
        .routes(routes!(get_agent, update_agent, delete_agent))
        .routes(routes!(update_agent_status))
}
