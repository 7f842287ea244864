//! The Contacts tag's handlers. Contacts are read from the contacts read model
//! (`omnistream_projections::contacts::queries`) and changed through `commands::contact`; a
//! contact's conversations come from the inbox, as the caller may see them.

use axum::extract::State;
use axum::Json;
use omnistream_commands::contact;
use omnistream_commands::store::ContactService;
use omnistream_domain::TenantId;
use omnistream_projections::{contacts, inbox, InboxProjector, Projector};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::dto::{Contact, ContactConversationsQuery, ContactListQuery, UpdateContact};
use crate::api::activity_logs::{self as activity, Activity};
use crate::api::conversations::{command_context, viewer, wait_for, ConversationWithContact};
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::Paged;
use crate::http::extract::{IdPath, Paginated, ValidJson, ValidQuery};

/// List contacts
#[utoipa::path(
    get, path = "/api/contacts", tag = "Contacts", params(ContactListQuery),
    responses((status = 200, description = "Most recently updated first", body = Paginated<Contact>), (status = 400, body = ErrorResponse),
              (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_contacts(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ContactsView>,
    ValidQuery(query): ValidQuery<ContactListQuery>,
) -> Result<Json<Paginated<Contact>>> {
    let page = query.page_request();
    let window = page.window();
    let found = contacts::queries::list(&pool, caller.tenant_id, &query.filter(), window).await?;
    let data = found.rows.into_iter().map(Into::into).collect();
    Ok(Json(Paginated::new(data, found.total, page)))
}

/// Contact `id` of `tenant`, or 404.
async fn load_contact(pool: &PgPool, tenant: TenantId, id: Uuid) -> Result<Contact> {
    contacts::queries::find(pool, tenant, id)
        .await?
        .map(Contact::from)
        .ok_or(ApiError::NotFound)
}

/// Get a contact by ID
#[utoipa::path(
    get, path = "/api/contacts/{id}", tag = "Contacts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Contact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_contact(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ContactsView>,
    IdPath(id): IdPath,
) -> Result<Json<Contact>> {
    Ok(Json(load_contact(&pool, caller.tenant_id, id).await?))
}

/// Update a contact
#[utoipa::path(
    patch, path = "/api/contacts/{id}", tag = "Contacts", params(("id" = Uuid, Path)), request_body = UpdateContact,
    responses((status = 200, body = Contact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_contact(
    State(pool): State<PgPool>,
    State(contacts): State<ContactService>,
    Authorized { caller, .. }: Authorized<perm::ContactsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateContact>,
) -> Result<Json<Contact>> {
    let tenant = caller.tenant_id;
    load_contact(&pool, tenant, id).await?;
    let context = command_context(&caller);
    contact::update(&contacts, &context, id, body.changes())
        .await
        .map_err(|error| match error {
            contact::ServiceError::NotFound(_) => ApiError::NotFound,
            other => ApiError::Internal(anyhow::anyhow!(other.to_string())),
        })?;
    let inbox: [&dyn Projector; 1] = [&InboxProjector];
    wait_for(
        &pool,
        &inbox,
        omnistream_domain::contact::AGGREGATE_TYPE,
        tenant,
        id,
    )
    .await?;
    let mut conn = pool.acquire().await?;
    activity::record(
        &mut conn,
        &caller,
        Activity {
            action: "contact.updated",
            entity_type: "contact",
            entity_id: Some(id.to_string()),
            details: json!({"name": body.name, "email": body.email, "phone_number": body.phone_number, "tags": body.tags}),
        },
    )
    .await?;
    Ok(Json(load_contact(&pool, tenant, id).await?))
}

/// List conversations for a contact
#[utoipa::path(
    get, path = "/api/contacts/{id}/conversations", tag = "Contacts", params(("id" = Uuid, Path), ContactConversationsQuery),
    responses((status = 200, description = "Visible conversations only", body = Paginated<ConversationWithContact>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn contact_conversations(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<ContactConversationsQuery>,
) -> Result<Json<Paginated<ConversationWithContact>>> {
    load_contact(&pool, caller.tenant_id, id).await?;
    let page = query.page_request();
    let window = page.window();
    let found = inbox::queries::list_visible(
        &pool,
        caller.tenant_id,
        viewer(&caller),
        &query.filter(id),
        window,
    )
    .await?;
    let data = found.rows.into_iter().map(Into::into).collect();
    Ok(Json(Paginated::new(data, found.total, page)))
}
