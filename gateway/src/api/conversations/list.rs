//! `GET /api/conversations`: the inbox list, filtered, as the caller may see it.

use axum::extract::State;
use axum::Json;
use omnistream_projections::inbox::queries;
use sqlx::PgPool;

use super::dto::{ConversationListQuery, ConversationWithContact};
use super::read::viewer;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ErrorResponse, Result};
use crate::http::extract::Paged;
use crate::http::extract::{Paginated, ValidQuery};

/// List conversations
#[utoipa::path(
    get, path = "/api/conversations", tag = "Conversations", params(ConversationListQuery),
    responses((status = 200, description = "Newest activity first; only conversations visible to the caller", body = Paginated<ConversationWithContact>),
              (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_conversations(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    ValidQuery(query): ValidQuery<ConversationListQuery>,
) -> Result<Json<Paginated<ConversationWithContact>>> {
    let page = query.page_request();
    let window = page.window();
    let found = queries::list_visible(
        &pool,
        caller.tenant_id,
        viewer(&caller),
        &query.filter(caller.agent_id),
        window,
    )
    .await?;
    let data = found.rows.into_iter().map(Into::into).collect();
    Ok(Json(Paginated::new(data, found.total, page)))
}
