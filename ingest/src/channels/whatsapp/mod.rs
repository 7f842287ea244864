//! WhatsApp Cloud API webhooks (`object = "whatsapp_business_account"`): the parser (a batch
//! walk in `parse.rs`, the content of a message by its type in `content.rs`, status reports in
//! `status.rs`) and the handler that records them (`handle.rs`).

mod content;
#[cfg(test)]
mod fixtures;
mod handle;
mod json;
mod parse;
mod payload;
mod status;

use futures::future::BoxFuture;

pub use parse::parse_whatsapp;
pub use payload::{WhatsAppBatch, WhatsAppChange, WhatsAppInbound, WhatsAppStatus};

use crate::channels::{meta, Disposition, InboundChannel, StoredPayload};
use crate::InboundProcessor;

/// The `object` of WhatsApp Business Account webhooks.
pub const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// Meta payloads about WhatsApp Business Accounts.
pub struct WhatsAppChannel;

impl InboundChannel for WhatsAppChannel {
    fn name(&self) -> &'static str {
        "whatsapp"
    }

    fn accepts(&self, payload: &StoredPayload) -> bool {
        meta::object(payload) == Some(WHATSAPP_OBJECT)
    }

    /// `<phone_number_id>:<customer wa_id>`, from the first message or status of the payload.
    fn ordering_key(&self, payload: &StoredPayload) -> String {
        let value = payload
            .json()
            .and_then(|p| p.pointer("/entry/0/changes/0/value"));
        let text = |pointer: &str| {
            value
                .and_then(|v| v.pointer(pointer))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        };
        let customer = [text("/messages/0/from"), text("/statuses/0/recipient_id")]
            .into_iter()
            .find(|c| !c.is_empty())
            .unwrap_or_default();
        format!("{}:{customer}", text("/metadata/phone_number_id"))
    }

    fn handle<'a>(
        &'a self,
        processor: &'a InboundProcessor,
        payload: StoredPayload,
    ) -> BoxFuture<'a, anyhow::Result<Disposition>> {
        Box::pin(handle::handle(processor, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(body: serde_json::Value) -> StoredPayload {
        StoredPayload::new(1, "meta".into(), None, body.to_string().into_bytes())
    }

    #[test]
    fn payloads_are_ordered_per_business_number_and_customer() {
        let key = |value: serde_json::Value| {
            WhatsAppChannel.ordering_key(&stored(serde_json::json!({
                "object": WHATSAPP_OBJECT, "entry": [{"changes": [{"value": value}]}]
            })))
        };
        let message = serde_json::json!({"metadata": {"phone_number_id": "100"},
                                          "messages": [{"from": "6281"}]});
        let status = serde_json::json!({"metadata": {"phone_number_id": "100"},
                                         "statuses": [{"recipient_id": "6281"}]});
        assert_eq!(key(message), "100:6281");
        assert_eq!(
            key(status),
            "100:6281",
            "a status follows its customer's messages"
        );
        assert_eq!(key(serde_json::json!({})), ":");
    }
}
