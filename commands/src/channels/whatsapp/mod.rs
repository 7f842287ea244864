//! The WhatsApp channel: its Cloud API calls on the Graph client ([`client`]), the send-message
//! bodies ([`message`]) and the adapter, whose sends are paced to each business number's
//! throughput (`throughput_mps` in the account config, else Meta's default of 80 per second) so
//! that a burst never trips Meta's throughput limit (130429).

pub mod client;
pub mod message;

use async_trait::async_trait;
use omnistream_domain::Channel;
use serde_json::{Map, Value};

use super::{config_text, ChannelAdapter, OutboundDelivery, SendOutcome};
use crate::channels::meta::GraphClient;
use crate::infra::pacing::Pacer;
use message::{message_body, OutboundPayload};

/// Meta's default throughput per business number (messages per second).
pub const DEFAULT_THROUGHPUT_MPS: u32 = 80;
/// The highest throughput Meta grants a number.
pub const MAX_THROUGHPUT_MPS: u32 = 1000;

/// Sends through the Graph API.
#[derive(Clone)]
pub struct WhatsAppAdapter {
    pub graph: GraphClient,
    /// Spaces the sends of each business number.
    pub pacer: Pacer,
}

#[async_trait]
impl ChannelAdapter for WhatsAppAdapter {
    fn channel(&self) -> Channel {
        Channel::Whatsapp
    }

    async fn send(&self, config: &Map<String, Value>, delivery: &OutboundDelivery) -> SendOutcome {
        let (Some(phone_number_id), Some(token), Some(to)) = (
            config_text(config, "phone_number_id"),
            config_text(config, "access_token"),
            delivery.wa_id.clone(),
        ) else {
            return SendOutcome::failed(
                "the integration account or contact is missing WhatsApp details",
            );
        };
        let payload = match delivery.message_type.as_str() {
            "text" => OutboundPayload::Text {
                body: delivery.content.as_deref().unwrap_or_default(),
            },
            "template" => match &delivery.template {
                Some(template) => OutboundPayload::Template { template },
                None => return SendOutcome::failed("template message without a template"),
            },
            kind @ ("image" | "video" | "audio" | "document" | "sticker") => {
                match &delivery.media_url {
                    Some(link) => OutboundPayload::Media {
                        kind,
                        link,
                        caption: delivery.content.as_deref(),
                        filename: delivery.filename.as_deref(),
                    },
                    None => return SendOutcome::failed("media message without media_url"),
                }
            }
            other => return SendOutcome::failed(format!("message type {other} cannot be sent")),
        };
        let body = message_body(&to, &payload, delivery.reply_to_external_id.as_deref());
        let throughput = config
            .get("throughput_mps")
            .and_then(Value::as_u64)
            .map_or(DEFAULT_THROUGHPUT_MPS, |mps| {
                mps.clamp(1, u64::from(MAX_THROUGHPUT_MPS)) as u32
            });
        self.pacer.wait(&phone_number_id, throughput).await;
        self.graph
            .send_message(&token, &phone_number_id, &body)
            .await
            .map_or_else(SendOutcome::from, SendOutcome::Sent)
    }
}
