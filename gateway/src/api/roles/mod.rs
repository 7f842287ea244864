//! Roles tag: the fixed system roles and tenants' custom roles, and the permission catalogue.
//! The router is here, the handlers in [`handlers`], the bodies in [`dto`], and the SQL (the
//! `roles` row and its permissions, with its activity row) in [`store`].

mod dto;
mod handlers;
mod store;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use handlers::*;

pub use dto::{CreateRole, PermissionInfo, RoleWithPermissions, UpdateRole};
pub use store::{create_system_roles, custom_role_permissions};

/// Routes of the Roles tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(list_permissions))
}
