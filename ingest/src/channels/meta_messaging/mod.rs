//! Messenger (`object = "page"`) and Instagram (`object = "instagram"`) messaging webhooks: the
//! parser of their `messaging[]` events (`parse.rs`) and the handler that records them
//! (`handle.rs`). The two products share one payload shape, so they are one inbound channel.

mod handle;
mod parse;

use futures::future::BoxFuture;

pub use parse::{
    parse_messaging, MessagingEvent, MessagingKind, INSTAGRAM_OBJECT, MESSENGER_OBJECT,
};

use crate::channels::{meta, Disposition, InboundChannel, StoredPayload};
use crate::InboundProcessor;

/// Meta payloads about Facebook Pages (Messenger) and Instagram accounts.
pub struct MetaMessagingChannel;

impl InboundChannel for MetaMessagingChannel {
    fn name(&self) -> &'static str {
        "meta messaging"
    }

    fn accepts(&self, payload: &StoredPayload) -> bool {
        matches!(
            meta::object(payload),
            Some(MESSENGER_OBJECT | INSTAGRAM_OBJECT)
        )
    }

    /// `page:<business id>:<customer id>`, from the first event of the payload; an echo of the
    /// business's own message has the two the other way round, so it keeps its place among the
    /// customer's messages.
    fn ordering_key(&self, payload: &StoredPayload) -> String {
        let event = payload
            .json()
            .and_then(|p| p.pointer("/entry/0/messaging/0"));
        let id = |pointer: &str| {
            event
                .and_then(|e| e.pointer(pointer))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        };
        let echo = event
            .and_then(|e| e.pointer("/message/is_echo"))
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        let (business, customer) = if echo {
            (id("/sender/id"), id("/recipient/id"))
        } else {
            (id("/recipient/id"), id("/sender/id"))
        };
        format!("page:{business}:{customer}")
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
    use serde_json::json;

    fn key(body: serde_json::Value) -> String {
        let payload =
            StoredPayload::new(1, "messenger".into(), None, body.to_string().into_bytes());
        MetaMessagingChannel.ordering_key(&payload)
    }

    #[test]
    fn payloads_are_ordered_per_business_and_customer_echoes_included() {
        let message = json!({"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "message": {"mid": "m"}}]}]});
        let echo = json!({"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID1"}, "message": {"mid": "e", "is_echo": true}}]}]});
        let other = json!({"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "PSID2"}, "recipient": {"id": "PAGE1"}, "read": {"watermark": 1}}]}]});
        assert_eq!(key(message.clone()), "page:PAGE1:PSID1");
        assert_eq!(key(echo), key(message.clone()));
        assert_ne!(key(other), key(message));
    }
}
