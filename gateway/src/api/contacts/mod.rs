//! Contacts tag: the customers behind conversations.

use axum::extract::State;
use axum::Json;
use std::time::Duration;

use chrono::{DateTime, Utc};
use omnistream_commands::contact;
use omnistream_domain::contact::ContactChanges;
use omnistream_domain::{Channel, EmailAddress, StreamId};
use omnistream_projections::InboxProjector;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{Postgres, QueryBuilder};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity};
use crate::api::conversations::{
    like_pattern, push_visibility, ConversationWithContact, CONVERSATION_SELECT,
};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{
    check_text, nullable, present, IdPath, PageRequest, Paginated, ValidJson, ValidQuery, Validate,
};

/// `Contact`.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Contact {
    pub id: Uuid,
    pub name: String,
    pub phone_number: Option<String>,
    pub email: Option<String>,
    pub avatar_url: Option<String>,
    pub wa_id: Option<String>,
    pub instagram_id: Option<String>,
    pub messenger_psid: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom_attributes: Value,
    pub last_contacted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const CONTACT_COLUMNS: &str =
    "id, name, phone_number, email, avatar_url, wa_id, instagram_id, messenger_psid, tags, \
    custom_attributes, last_contacted_at, created_at, updated_at";

/// Filters of `GET /api/contacts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactListQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    /// Substring of name, phone or email.
    q: Option<String>,
    tag: Option<String>,
    /// Has an identifier on that channel.
    channel: Option<String>,
}

impl Validate for ContactListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        PageRequest::checked(self.page, self.per_page, 20, 100, violations);
        for (field, value) in [("q", &mut self.q), ("tag", &mut self.tag)] {
            if let Some(text) = value {
                check_text(violations, field, text, 0, 200);
            }
        }
        if self
            .channel
            .as_deref()
            .is_some_and(|c| c.parse::<Channel>().is_err())
        {
            violations.add("channel", "must be whatsapp, instagram, email or messenger");
        }
    }
}

/// List contacts
#[utoipa::path(
    get, path = "/api/contacts", tag = "Contacts", params(ContactListQuery),
    responses((status = 200, description = "Most recently updated first", body = Paginated<Contact>), (status = 400, body = ErrorResponse),
              (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_contacts(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ContactsView>,
    ValidQuery(query): ValidQuery<ContactListQuery>,
) -> Result<Json<Paginated<Contact>>> {
    let page = PageRequest::checked(
        query.page,
        query.per_page,
        20,
        100,
        &mut Violations::default(),
    );
    let filtered = |select: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(select);
        builder
            .push(" FROM contacts WHERE tenant_id = ")
            .push_bind(caller.tenant_id.as_uuid());
        if let Some(q) = query.q.as_deref().filter(|q| !q.is_empty()) {
            let pattern = like_pattern(q);
            builder
                .push(" AND (name ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR phone_number ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR email ILIKE ")
                .push_bind(pattern)
                .push(")");
        }
        if let Some(tag) = query.tag.as_deref().filter(|t| !t.is_empty()) {
            builder
                .push(" AND ")
                .push_bind(tag.to_lowercase())
                .push(" = ANY(tags)");
        }
        match query.channel.as_deref() {
            Some("whatsapp") => {
                builder.push(" AND wa_id IS NOT NULL");
            }
            Some("instagram") => {
                builder.push(" AND instagram_id IS NOT NULL");
            }
            Some("messenger") => {
                builder.push(" AND messenger_psid IS NOT NULL");
            }
            Some("email") => {
                builder.push(" AND email IS NOT NULL");
            }
            _ => {}
        }
        builder
    };
    Ok(Json(
        crate::http::extract::fetch_page::<Contact>(
            &state.pool,
            filtered,
            &format!("SELECT {CONTACT_COLUMNS}"),
            "updated_at DESC, id",
            page,
        )
        .await?,
    ))
}

async fn load_contact(state: &AppState, tenant: Uuid, id: Uuid) -> Result<Contact> {
    sqlx::query_as(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound)
}

/// Get a contact by ID
#[utoipa::path(
    get, path = "/api/contacts/{id}", tag = "Contacts", params(("id" = Uuid, Path)),
    responses((status = 200, body = Contact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn get_contact(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ContactsView>,
    IdPath(id): IdPath,
) -> Result<Json<Contact>> {
    Ok(Json(
        load_contact(&state, caller.tenant_id.as_uuid(), id).await?,
    ))
}

/// `UpdateContact`: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    /// 1..200 characters.
    #[serde(default, deserialize_with = "present")]
    name: Option<String>,
    /// A valid address, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    phone_number: Option<Option<String>>,
    /// Replaces the set (trimmed, lower-cased, 1..50 characters, at most 20).
    #[serde(default, deserialize_with = "present")]
    tags: Option<Vec<String>>,
    /// Replaces the stored object.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    custom_attributes: Option<Value>,
}

impl Validate for UpdateContact {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(name) = &mut self.name {
            check_text(violations, "name", name, 1, 200);
        }
        if let Some(Some(email)) = &mut self.email {
            match EmailAddress::parse(email) {
                Ok(parsed) => *email = parsed.into_inner(),
                Err(_) => violations.add("email", "must be a valid email address"),
            }
        }
        if let Some(Some(phone)) = &mut self.phone_number {
            match omnistream_domain::PhoneNumber::parse(phone) {
                Ok(digits) => *phone = digits.to_string(),
                Err(invalid) => violations.add("phone_number", invalid.to_string()),
            }
        }
        if let Some(tags) = &mut self.tags {
            crate::api::conversations::check_tags(violations, "tags", tags);
        }
        if self
            .custom_attributes
            .as_ref()
            .is_some_and(|a| !a.is_object())
        {
            violations.add("custom_attributes", "must be an object");
        }
    }
}

/// Update a contact
#[utoipa::path(
    patch, path = "/api/contacts/{id}", tag = "Contacts", params(("id" = Uuid, Path)), request_body = UpdateContact,
    responses((status = 200, body = Contact), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn update_contact(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ContactsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateContact>,
) -> Result<Json<Contact>> {
    let tenant = caller.tenant_id;
    load_contact(&state, tenant.as_uuid(), id).await?;
    let changes = ContactChanges {
        name: body.name.clone(),
        email: body.email.clone(),
        phone_number: body.phone_number.clone(),
        tags: body.tags.clone(),
        custom_attributes: body.custom_attributes.clone(),
    };
    let context = crate::api::conversations::command_context(&caller);
    contact::update(&state.contacts, &context, id, changes)
        .await
        .map_err(|error| match error {
            contact::ServiceError::NotFound(_) => ApiError::NotFound,
            other => ApiError::Internal(anyhow::anyhow!(other.to_string())),
        })?;
    let stream = StreamId::new(tenant, id).to_string();
    omnistream_projections::wait_until_applied(
        &state.pool,
        &InboxProjector,
        omnistream_domain::contact::AGGREGATE_TYPE,
        &stream,
        Duration::from_secs(5),
    )
    .await?;
    let mut conn = state.pool.acquire().await?;
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
    Ok(Json(load_contact(&state, tenant.as_uuid(), id).await?))
}

/// Filters of a contact's conversations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactConversationsQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    status: Option<String>,
}

impl Validate for ContactConversationsQuery {
    fn validate(&mut self, violations: &mut Violations) {
        PageRequest::checked(self.page, self.per_page, 20, 100, violations);
        if self.status.as_deref().is_some_and(|s| {
            s.parse::<omnistream_domain::conversation::ConversationStatus>()
                .is_err()
        }) {
            violations.add(
                "status",
                "must be open, pending, resolved, closed or expired",
            );
        }
    }
}

/// List conversations for a contact
#[utoipa::path(
    get, path = "/api/contacts/{id}/conversations", tag = "Contacts", params(("id" = Uuid, Path), ContactConversationsQuery),
    responses((status = 200, description = "Visible conversations only", body = Paginated<ConversationWithContact>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn contact_conversations(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::ConversationsView>,
    IdPath(id): IdPath,
    ValidQuery(query): ValidQuery<ContactConversationsQuery>,
) -> Result<Json<Paginated<ConversationWithContact>>> {
    load_contact(&state, caller.tenant_id.as_uuid(), id).await?;
    let page = PageRequest::checked(
        query.page,
        query.per_page,
        20,
        100,
        &mut Violations::default(),
    );
    let filtered = |select: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(select);
        builder.push(" WHERE c.contact_id = ").push_bind(id);
        push_visibility(&mut builder, &caller);
        if let Some(status) = &query.status {
            builder.push(" AND c.status = ").push_bind(status.clone());
        }
        builder
    };
    let total: i64 = filtered(
        "SELECT count(*) FROM conversations c LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id",
    )
    .build_query_scalar()
    .fetch_one(&state.pool)
    .await?;
    let mut rows = filtered(CONVERSATION_SELECT);
    rows.push(" ORDER BY c.last_message_at DESC NULLS LAST, c.id LIMIT ")
        .push_bind(page.limit())
        .push(" OFFSET ")
        .push_bind(page.offset());
    let data = crate::api::conversations::fetch_conversations(rows, &state.pool).await?;
    Ok(Json(Paginated::new(data, total, page)))
}

/// Routes of the Contacts tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_contacts))
        .routes(routes!(get_contact, update_contact))
        .routes(routes!(contact_conversations))
}
