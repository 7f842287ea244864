//! The SQL of the Activity Logs tag: one filtered page of the tenant's `activity_logs` rows.
//! (Rows are written by [`omnistream_commands::audit::record`], in each change's transaction.)

use omnistream_domain::TenantId;
use omnistream_projections::sql::TimeRange;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::dto::{ActivityLog, ActivityLogQuery};
use crate::http::error::Result;
use crate::http::extract::{fetch_page, PageRequest, Paginated};

/// One page of the tenant's rows matching `query`, newest first.
pub(super) async fn page(
    pool: &PgPool,
    tenant: TenantId,
    query: &ActivityLogQuery,
    page: PageRequest,
    range: TimeRange,
) -> Result<Paginated<ActivityLog>> {
    let filtered = |select: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(select);
        builder
            .push(" FROM activity_logs l WHERE l.tenant_id = ")
            .push_bind(tenant.as_uuid());
        if let Some(agent_id) = query.agent_id {
            builder.push(" AND l.agent_id = ").push_bind(agent_id);
        }
        if let Some(action) = &query.action {
            builder
                .push(" AND l.action = ")
                .push_bind(action.trim().to_owned());
        }
        if let Some(entity_type) = &query.entity_type {
            builder
                .push(" AND l.entity_type = ")
                .push_bind(entity_type.trim().to_owned());
        }
        if let Some(entity_id) = &query.entity_id {
            builder
                .push(" AND l.entity_id = ")
                .push_bind(entity_id.trim().to_owned());
        }
        range.push(&mut builder, "l.created_at", tenant);
        builder
    };
    let select =
        "SELECT l.id, l.agent_id, l.agent_name, l.action, l.entity_type, l.entity_id, l.details, \
                  l.ip_address, l.user_agent, l.created_at";
    fetch_page(pool, filtered, select, "l.created_at DESC, l.id DESC", page).await
}
