//! The activity log: the endpoint that lists it, and how the gateway writes it. Configuration
//! changes write their rows with [`omnistream_commands::audit::record`] (re-exported here as
//! [`record`]) in the same transaction as the change, acting as the API [`Caller`] (or
//! [`actor`] before one exists); conversation and note actions' rows are derived from their
//! events by the activity projector (`omnistream_projections::ActivityProjector`).
//!
//! The router is here, the handler in [`handlers`], the row and query in [`dto`], and the
//! filtered read in [`store`].

mod dto;
mod handlers;
mod store;

use omnistream_domain::TenantId;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::app::AppState;
use crate::http::auth::{Caller, RequestOrigin};
use handlers::*;

pub use dto::{ActivityLog, ActivityLogQuery};
pub use omnistream_commands::audit::{record, Activity, Actor};

/// An API caller as the actor of an activity row: its agent and the request's origin.
impl<'a> From<&'a Caller> for Actor<'a> {
    fn from(caller: &'a Caller) -> Self {
        actor(
            caller.tenant_id,
            caller.agent_id.as_uuid(),
            &caller.agent_name,
            &caller.origin,
        )
    }
}

/// Agent `agent_id` (named `agent_name`) of `tenant_id`, acting through a request from `origin`
/// (for changes made before a [`Caller`] exists: registration, login, logout).
pub(crate) fn actor<'a>(
    tenant_id: TenantId,
    agent_id: Uuid,
    agent_name: &'a str,
    origin: &'a RequestOrigin,
) -> Actor<'a> {
    Actor {
        tenant_id,
        agent_id: Some(agent_id),
        agent_name: Some(agent_name),
        ip: origin.ip.as_deref(),
        user_agent: origin.user_agent.as_deref(),
    }
}

/// Routes of the Activity Logs tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_activity_logs))
}
