//! Contacts (`contacts`), built from the Contact aggregate's events.
//!
//! It runs as part of the inbox projector (in the same transactions, in log order), so a
//! conversation never shows up in the inbox before its contact. Its reads are in [`queries`].

pub mod queries;

use async_trait::async_trait;
use omnistream_domain::contact::ContactEvent;
use omnistream_domain::{Channel, StreamId};
use serde::Deserialize;
use sqlx::PgConnection;

use crate::{Projector, RecordedEvent};

/// The column of `contacts` holding a contact's identifier on `channel`.
pub(crate) fn identity_column(channel: Channel) -> &'static str {
    match channel {
        Channel::Whatsapp => "wa_id",
        Channel::Instagram => "instagram_id",
        Channel::Messenger => "messenger_psid",
        Channel::Email => "email",
    }
}

/// Maintains `contacts` (driven by [`crate::InboxProjector`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactsProjector;

#[async_trait]
impl Projector for ContactsProjector {
    fn name(&self) -> &'static str {
        "contacts"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["contacts"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        if event.aggregate_type != omnistream_domain::contact::AGGREGATE_TYPE {
            return Ok(());
        }
        let stream: StreamId = event.aggregate_id.parse()?;
        let parsed = ContactEvent::deserialize(&event.payload)?;
        let (tenant, id) = (stream.tenant_id.as_uuid(), stream.id);
        match parsed {
            ContactEvent::ContactCreated {
                channel,
                external_id,
                name,
                phone_number,
                at,
                ..
            } => {
                let column = identity_column(channel);
                sqlx::query(&format!(
                    "INSERT INTO contacts (id, tenant_id, name, phone_number, {column}, last_contacted_at, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6, $6) ON CONFLICT (id) DO NOTHING"
                ))
                .bind(id)
                .bind(tenant)
                .bind(name)
                .bind(phone_number)
                .bind(external_id)
                .bind(at)
                .execute(conn)
                .await?;
            }
            ContactEvent::ContactProfileNameChanged { name, at } => {
                sqlx::query("UPDATE contacts SET name = $3, updated_at = GREATEST(updated_at, $4) WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant)
                    .bind(id)
                    .bind(name)
                    .bind(at)
                    .execute(conn)
                    .await?;
            }
            ContactEvent::ContactSeen { at } => {
                sqlx::query(
                    "UPDATE contacts SET last_contacted_at = $3, updated_at = GREATEST(updated_at, $3) WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(id)
                .bind(at)
                .execute(conn)
                .await?;
            }
            ContactEvent::ContactUpdated { changes, at } => {
                sqlx::query(
                    "UPDATE contacts SET name = COALESCE($3, name),
                         email = CASE WHEN $4 THEN $5 ELSE email END,
                         phone_number = CASE WHEN $6 THEN $7 ELSE phone_number END,
                         tags = COALESCE($8, tags), custom_attributes = COALESCE($9, custom_attributes),
                         updated_at = GREATEST(updated_at, $10)
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(id)
                .bind(changes.name)
                .bind(changes.email.is_some())
                .bind(changes.email.flatten())
                .bind(changes.phone_number.is_some())
                .bind(changes.phone_number.flatten())
                .bind(changes.tags)
                .bind(changes.custom_attributes)
                .bind(at)
                .execute(conn)
                .await?;
            }
        }
        Ok(())
    }
}
