//! Outgoing Webhooks tag: endpoints that receive the tenant's events, signed per the Standard
//! Webhooks specification, and their delivery log. The router is here, the handlers in
//! [`handlers`], the bodies in [`dto`]; test events, redeliveries and replays are
//! `omnistream_commands::webhooks::admin` calls.

mod dto;
mod handlers;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::app::AppState;
use handlers::*;

pub use dto::{
    CreateOutgoingWebhook, DeliveryQuery, EventTypeInfo, OutgoingWebhook, ReplayRequest,
    ReplayResponse, TestWebhookRequest, UpdateOutgoingWebhook, WebhookDelivery,
};

/// The event store as the webhook dispatcher reads it (through the read side's log reader).
pub struct StoredEventLog(pub sqlx::PgPool);

#[async_trait::async_trait]
impl omnistream_commands::webhooks::fanout::StoredEvents for StoredEventLog {
    async fn find(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: i64,
    ) -> anyhow::Result<Option<omnistream_commands::webhooks::fanout::StoredEvent>> {
        let found = omnistream_projections::log::find_event(
            &self.0,
            aggregate_type,
            aggregate_id,
            sequence,
        )
        .await?;
        Ok(
            found.map(|event| omnistream_commands::webhooks::fanout::StoredEvent {
                payload: event.payload,
                recorded_at: event.recorded_at,
            }),
        )
    }
}

/// Routes of the Outgoing Webhooks tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(update_webhook, delete_webhook))
        .routes(routes!(event_types))
        .routes(routes!(list_deliveries))
        .routes(routes!(test_webhook))
        .routes(routes!(redeliver))
        .routes(routes!(replay))
}
