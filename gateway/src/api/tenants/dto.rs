//! The public shape of a tenant, and what a new one starts with.

use chrono::{DateTime, Utc};
use omnistream_domain::EmailAddress;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// `Organization`: a tenant.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    /// `active` or `suspended`.
    pub status: String,
    /// IANA timezone; day buckets and date filters use it.
    pub timezone: String,
    pub plan_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub suspended_at: Option<DateTime<Utc>>,
}

/// What a new organization starts with.
pub struct NewOrganization<'a> {
    pub organization_name: &'a str,
    pub admin_name: &'a str,
    pub admin_email: &'a EmailAddress,
    /// The admin's password, already hashed ([`crate::http::auth::password::hash`]) so no
    /// connection waits on it.
    pub admin_password_hash: String,
}

/// Login of the demo tenant created on an empty database.
pub struct DemoLogin {
    pub email: String,
    pub password: String,
}
