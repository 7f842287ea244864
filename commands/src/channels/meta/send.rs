//! Messenger and Instagram sends through the Send API: `POST /{page_id}/messages` with the Page
//! access token for Messenger, `POST /{ig_user_id}/messages` on the Instagram Login Graph API
//! (`INSTAGRAM_BASE_URL`) with the account's Instagram token. Replies go out as
//! `messaging_type: RESPONSE`, or as `MESSAGE_TAG` with `HUMAN_AGENT` when the conversation
//! decided so at queue time (a human agent's reply after 24 hours); the window itself was
//! checked then. Messenger sends carry `metadata` naming our message, so their echoes are
//! recognised as ours.

use async_trait::async_trait;
use omnistream_domain::Channel;
use serde_json::{json, Map, Value};

use super::GraphClient;
use crate::channels::messenger::echo_metadata;
use crate::channels::{config_text, ChannelAdapter, OutboundDelivery, SendOutcome};

/// Sends on Messenger or Instagram (one adapter per channel, told apart by `channel`).
#[derive(Clone)]
pub struct PageAdapter {
    pub channel: Channel,
    pub graph: GraphClient,
}

#[async_trait]
impl ChannelAdapter for PageAdapter {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn send(&self, config: &Map<String, Value>, delivery: &OutboundDelivery) -> SendOutcome {
        let (page_id, token, recipient) = match self.channel {
            Channel::Instagram => (
                config_text(config, "ig_user_id"),
                config_text(config, "access_token"),
                delivery.instagram_id.clone(),
            ),
            _ => (
                config_text(config, "page_id"),
                config_text(config, "page_access_token"),
                delivery.messenger_psid.clone(),
            ),
        };
        let (Some(page_id), Some(token), Some(recipient)) = (page_id, token, recipient) else {
            return SendOutcome::failed(format!(
                "the {} account or the contact is missing the page id, token or recipient id",
                self.channel.as_str()
            ));
        };
        let mut message = match delivery.message_type.as_str() {
            "text" => json!({"text": delivery.content.as_deref().unwrap_or_default()}),
            kind @ ("image" | "video" | "audio" | "document") => match &delivery.media_url {
                Some(url) => {
                    let kind = if kind == "document" { "file" } else { kind };
                    json!({"attachment": {"type": kind, "payload": {"url": url, "is_reusable": true}}})
                }
                None => return SendOutcome::failed("media message without media_url"),
            },
            other => {
                return SendOutcome::failed(format!("message type {other} cannot be sent here"))
            }
        };
        if self.channel == Channel::Messenger {
            message["metadata"] = json!(echo_metadata(delivery.message_id));
        }
        let mut body = json!({"recipient": {"id": recipient}, "messaging_type": "RESPONSE", "message": message});
        if let Some(tag) = &delivery.message_tag {
            body["messaging_type"] = json!("MESSAGE_TAG");
            body["tag"] = json!(tag);
        }
        self.graph
            .send_page_message(&token, &page_id, &body)
            .await
            .map_or_else(SendOutcome::from, SendOutcome::Sent)
    }
}
