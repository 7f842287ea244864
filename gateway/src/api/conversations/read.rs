//! Reading the inbox as a caller sees it: the caller as a viewer of the visibility rule, one
//! visible conversation, and the read-your-writes waits after a command.

use std::time::Duration;

use axum::Json;
use omnistream_domain::conversation;
use omnistream_domain::{Permission, StreamId, TenantId};
use omnistream_projections::inbox::queries::{self, Viewer};
use omnistream_projections::{ActivityProjector, InboxProjector, Projector};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::dto::ConversationWithContact;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Result};

/// `caller` as the inbox's visibility rule sees it.
pub(crate) fn viewer(caller: &Caller) -> Viewer {
    Viewer {
        agent_id: caller.agent_id,
        sees_all: caller.holds(Permission::ConversationsViewAll),
    }
}

/// One conversation visible to `caller`, or 404.
pub(crate) async fn load_visible(
    executor: impl PgExecutor<'_>,
    caller: &Caller,
    id: Uuid,
) -> Result<ConversationWithContact> {
    queries::find_visible(executor, caller.tenant_id, viewer(caller), id)
        .await?
        .map(ConversationWithContact::from)
        .ok_or(ApiError::NotFound)
}

/// The conversation as the caller now sees it (after [`wait_for_change`]).
pub(super) async fn reload(
    pool: &PgPool,
    caller: &Caller,
    id: Uuid,
) -> Result<Json<ConversationWithContact>> {
    Ok(Json(load_visible(pool, caller, id).await?))
}

/// Read-your-writes: waits until each of `projectors` has applied the latest event of stream
/// `id` of `aggregate_type` in `tenant` (best effort: see `wait_until_applied`).
pub(crate) async fn wait_for(
    pool: &PgPool,
    projectors: &[&dyn Projector],
    aggregate_type: &str,
    tenant: TenantId,
    id: Uuid,
) -> Result<()> {
    let stream = StreamId::new(tenant, id).to_string();
    for projector in projectors {
        omnistream_projections::wait_until_applied(
            pool,
            *projector,
            aggregate_type,
            &stream,
            Duration::from_secs(5),
        )
        .await?;
    }
    Ok(())
}

/// Read-your-writes after an agent's action: waits until the inbox shows conversation `id`'s
/// latest event and the activity log holds its row.
pub(crate) async fn wait_for_change(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<()> {
    let projectors: [&dyn Projector; 2] = [&InboxProjector, &ActivityProjector];
    wait_for(pool, &projectors, conversation::AGGREGATE_TYPE, tenant, id).await
}

/// Read-your-writes: waits for the inbox projection to show conversation `id`'s latest event.
pub(crate) async fn wait_for_inbox(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<()> {
    wait_for(
        pool,
        &[&InboxProjector],
        conversation::AGGREGATE_TYPE,
        tenant,
        id,
    )
    .await
}
