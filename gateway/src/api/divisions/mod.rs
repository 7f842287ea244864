//! Divisions tag: teams of agents that conversations can be routed to. The router is here, the
//! handlers in [`handlers`], the bodies in [`dto`], and the SQL (the `divisions` row and its
//! members, with its activity row) in [`store`].

mod dto;
mod handlers;
mod store;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use handlers::*;

pub use dto::{
    AgentIdsRequest, AgentsAdded, AgentsRemoved, CreateDivision, Division, DivisionWithAgents,
    DivisionWithCount, UpdateDivision,
};

/// Routes of the Divisions tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_divisions, create_division))
        .routes(routes!(get_division, update_division, delete_division))
        .routes(routes!(
            list_division_agents,
            add_division_agents,
            remove_division_agents
        ))
}
