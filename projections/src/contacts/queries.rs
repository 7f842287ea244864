//! Reads of the contacts read model: a tenant's contacts by page, and one contact.

use chrono::{DateTime, Utc};
use omnistream_domain::{Channel, TenantId};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::identity_column;
use crate::sql::{fetch_page, like_pattern, Page, Window};

/// A row of `contacts`.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ContactRow {
    /// The contact.
    pub id: Uuid,
    /// Its display name.
    pub name: String,
    /// Its phone number (digits).
    pub phone_number: Option<String>,
    /// Its email address.
    pub email: Option<String>,
    /// Its avatar.
    pub avatar_url: Option<String>,
    /// Its WhatsApp id.
    pub wa_id: Option<String>,
    /// Its Instagram-scoped id.
    pub instagram_id: Option<String>,
    /// Its Messenger page-scoped id.
    pub messenger_psid: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Free-form attributes (a JSON object).
    pub custom_attributes: Value,
    /// When it last wrote or was written to.
    pub last_contacted_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const CONTACT_COLUMNS: &str =
    "id, name, phone_number, email, avatar_url, wa_id, instagram_id, messenger_psid, tags, \
    custom_attributes, last_contacted_at, created_at, updated_at";

/// Conditions of a contact list; each one given narrows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactFilter {
    /// Only contacts whose name, phone or email contains this text, case-insensitively
    /// (empty: no condition).
    pub text: Option<String>,
    /// Only contacts carrying this tag (compared lower-cased; empty: no condition).
    pub tag: Option<String>,
    /// Only contacts with an identifier on this channel.
    pub channel: Option<Channel>,
}

/// One page of `tenant`'s contacts that `filter` selects, most recently updated first.
#[tracing::instrument(skip(pool), level = "debug", err)]
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    filter: &ContactFilter,
    window: Window,
) -> Result<Page<ContactRow>, sqlx::Error> {
    let filtered = |prefix: &str| {
        let mut builder = QueryBuilder::<Postgres>::new(prefix);
        builder
            .push(" FROM contacts WHERE tenant_id = ")
            .push_bind(tenant.as_uuid());
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            let pattern = like_pattern(text);
            builder
                .push(" AND (name ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR phone_number ILIKE ")
                .push_bind(pattern.clone())
                .push(" OR email ILIKE ")
                .push_bind(pattern)
                .push(")");
        }
        if let Some(tag) = filter.tag.as_deref().filter(|t| !t.is_empty()) {
            builder
                .push(" AND ")
                .push_bind(tag.to_lowercase())
                .push(" = ANY(tags)");
        }
        if let Some(channel) = filter.channel {
            builder.push(format!(" AND {} IS NOT NULL", identity_column(channel)));
        }
        builder
    };
    fetch_page(
        pool,
        filtered,
        "SELECT count(*)",
        &format!("SELECT {CONTACT_COLUMNS}"),
        "updated_at DESC, id",
        window,
    )
    .await
}

/// Contact `id` of `tenant`.
#[tracing::instrument(skip(executor), level = "debug", err)]
pub async fn find(
    executor: impl PgExecutor<'_>,
    tenant: TenantId,
    id: Uuid,
) -> Result<Option<ContactRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant.as_uuid())
    .bind(id)
    .fetch_optional(executor)
    .await
}
