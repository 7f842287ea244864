//! Request and response bodies of the Contacts tag, and their validation.

use chrono::{DateTime, Utc};
use omnistream_domain::contact::ContactChanges;
use omnistream_domain::conversation::ConversationStatus;
use omnistream_domain::{Channel, EmailAddress, PhoneNumber};
use omnistream_projections::contacts::queries::{ContactFilter, ContactRow};
use omnistream_projections::inbox::queries::ConversationFilter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::conversations::check_tags;
use crate::http::error::Violations;
use crate::http::extract::Paged;
use crate::http::extract::{check_text, nullable, present, Validate};

/// `Contact`.
#[derive(Debug, Serialize, ToSchema)]
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

impl From<ContactRow> for Contact {
    fn from(row: ContactRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            phone_number: row.phone_number,
            email: row.email,
            avatar_url: row.avatar_url,
            wa_id: row.wa_id,
            instagram_id: row.instagram_id,
            messenger_psid: row.messenger_psid,
            tags: row.tags,
            custom_attributes: row.custom_attributes,
            last_contacted_at: row.last_contacted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Filters of `GET /api/contacts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactListQuery {
    pub(super) page: Option<i64>,
    pub(super) per_page: Option<i64>,
    /// Substring of name, phone or email.
    q: Option<String>,
    tag: Option<String>,
    /// Has an identifier on that channel.
    channel: Option<String>,
}

impl Paged for ContactListQuery {
    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for ContactListQuery {
    fn validate(&mut self, violations: &mut Violations) {
        self.check_paging(violations);
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

impl ContactListQuery {
    /// The read model's filter for these (validated) parameters.
    pub(super) fn filter(&self) -> ContactFilter {
        ContactFilter {
            text: self.q.clone(),
            tag: self.tag.clone(),
            channel: self.channel.as_deref().and_then(|c| c.parse().ok()),
        }
    }
}

/// `UpdateContact`: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateContact {
    /// 1..200 characters.
    #[serde(default, deserialize_with = "present")]
    pub(super) name: Option<String>,
    /// A valid address, or null.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub(super) email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub(super) phone_number: Option<Option<String>>,
    /// Replaces the set (trimmed, lower-cased, 1..50 characters, at most 20).
    #[serde(default, deserialize_with = "present")]
    pub(super) tags: Option<Vec<String>>,
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
            match PhoneNumber::parse(phone) {
                Ok(digits) => *phone = digits.to_string(),
                Err(invalid) => violations.add("phone_number", invalid.to_string()),
            }
        }
        if let Some(tags) = &mut self.tags {
            check_tags(violations, "tags", tags);
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

impl UpdateContact {
    /// The changes as the contact command takes them.
    pub(super) fn changes(&self) -> ContactChanges {
        ContactChanges {
            name: self.name.clone(),
            email: self.email.clone(),
            phone_number: self.phone_number.clone(),
            tags: self.tags.clone(),
            custom_attributes: self.custom_attributes.clone(),
        }
    }
}

/// Filters of a contact's conversations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactConversationsQuery {
    pub(super) page: Option<i64>,
    pub(super) per_page: Option<i64>,
    status: Option<String>,
}

impl Paged for ContactConversationsQuery {
    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for ContactConversationsQuery {
    fn validate(&mut self, violations: &mut Violations) {
        self.check_paging(violations);
        if self
            .status
            .as_deref()
            .is_some_and(|s| s.parse::<ConversationStatus>().is_err())
        {
            violations.add(
                "status",
                "must be open, pending, resolved, closed or expired",
            );
        }
    }
}

impl ContactConversationsQuery {
    /// The inbox filter for contact `contact`'s conversations with these (validated) parameters.
    pub(super) fn filter(&self, contact: Uuid) -> ConversationFilter {
        ConversationFilter {
            contact_id: Some(contact),
            status: self.status.as_deref().and_then(|s| s.parse().ok()),
            ..ConversationFilter::default()
        }
    }
}
