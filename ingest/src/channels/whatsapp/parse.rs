//! WhatsApp Cloud API webhook payloads (`object = "whatsapp_business_account"`).
//!
//! One POST may batch several `entry[]`, each with several `changes[]`, each carrying several
//! `messages[]` (inbound) and `statuses[]` (reports about outbound messages). Everything the
//! parser does not understand is kept, as received, in [`WhatsAppBatch::ignored`] so the raw
//! log loses nothing; malformed input never panics.

use chrono::{DateTime, Utc};
use omnistream_commands::infra::media::{attachment_id, media_url};
use omnistream_domain::{InboundContent, InboundMedia, MessageStatus, MessageType, ProviderStatus};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The `object` of WhatsApp Business Account webhooks.
pub const WHATSAPP_OBJECT: &str = "whatsapp_business_account";

/// The only change `field` that carries messages and statuses.
const MESSAGES_FIELD: &str = "messages";

/// Everything one webhook POST carried.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WhatsAppBatch {
    /// The `field == "messages"` changes that held at least one usable message or status.
    pub changes: Vec<WhatsAppChange>,
    /// Entries, changes, messages and statuses not understood, as received, for the raw log.
    pub ignored: Vec<Value>,
}

/// One `entry[].changes[]` item: the traffic of one business phone number.
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppChange {
    /// `value.metadata.phone_number_id`: the business number the traffic belongs to.
    pub phone_number_id: String,
    /// `value.metadata.display_phone_number`.
    pub display_phone_number: Option<String>,
    /// Inbound customer messages, in payload order.
    pub messages: Vec<WhatsAppInbound>,
    /// Status reports about outbound messages, in payload order.
    pub statuses: Vec<WhatsAppStatus>,
}

/// One inbound customer message (`value.messages[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppInbound {
    /// `messages[].id` (the `wamid…`), the idempotency key.
    pub provider_message_id: String,
    /// `messages[].from`: the customer's `wa_id` (digits, no `+`).
    pub from: String,
    /// The customer's profile name from `value.contacts[]` whose `wa_id` equals `from`.
    pub profile_name: Option<String>,
    /// `messages[].timestamp` (unix seconds).
    pub sent_at: DateTime<Utc>,
    /// The normalised content.
    pub content: InboundContent,
    /// The message object as received.
    pub raw: Value,
}

impl WhatsAppInbound {
    /// Its content as recorded as message `message_id`. Meta keeps media behind an id (fetched
    /// with the account's token, see `omnistream_commands::channels::meta::media`): the media is
    /// named by the `/api/media/{id}` URL it is stored under when first read, its id derived
    /// from the message so every attempt names the same one. The provider's media id stays in
    /// the media description.
    pub fn content_for(&self, message_id: Uuid) -> InboundContent {
        let mut content = self.content.clone();
        if let Some(media) = content.media.as_mut() {
            if media.provider_media_id.is_some() && media.url.is_none() {
                media.url = Some(media_url(attachment_id(message_id, 0)));
            }
        }
        content
    }
}

/// One status report about an outbound message (`value.statuses[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct WhatsAppStatus {
    /// `statuses[].recipient_id`: the customer the message was sent to.
    pub recipient_id: String,
    /// The normalised status (`played` is reported as `read`).
    pub status: ProviderStatus,
    /// The status object as received.
    pub raw: Value,
}

/// Parses a WhatsApp Cloud API webhook payload.
///
/// A payload whose `object` is not `whatsapp_business_account`, or that has no `entry` array,
/// is ignored whole. Changes of other fields (`message_template_status_update`, …) and changes
/// with nothing usable are ignored whole; otherwise unusable messages and statuses are ignored
/// one by one.
pub fn parse_whatsapp(payload: &Value) -> WhatsAppBatch {
    let mut batch = WhatsAppBatch::default();
    let entries = payload
        .get("object")
        .and_then(Value::as_str)
        .filter(|object| *object == WHATSAPP_OBJECT)
        .and_then(|_| payload.get("entry"))
        .and_then(Value::as_array);
    let Some(entries) = entries else {
        batch.ignored.push(payload.clone());
        return batch;
    };
    for entry in entries {
        match entry.get("changes").and_then(Value::as_array) {
            Some(changes) => changes.iter().for_each(|c| parse_change(c, &mut batch)),
            None => batch.ignored.push(entry.clone()),
        }
    }
    batch
}

fn parse_change(change: &Value, batch: &mut WhatsAppBatch) {
    let value = change
        .get("field")
        .and_then(Value::as_str)
        .filter(|field| *field == MESSAGES_FIELD)
        .and_then(|_| change.get("value"));
    let phone_number_id = value.and_then(|v| non_empty(v.pointer("/metadata/phone_number_id")));
    let (Some(value), Some(phone_number_id)) = (value, phone_number_id) else {
        batch.ignored.push(change.clone());
        return;
    };
    let contacts = value
        .get("contacts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();

    let mut rejected = Vec::new();
    let messages = parse_items(value, "messages", &mut rejected, |m| {
        parse_message(m, contacts)
    });
    let statuses = parse_items(value, "statuses", &mut rejected, parse_status);

    if messages.is_empty() && statuses.is_empty() {
        batch.ignored.push(change.clone());
        return;
    }
    batch.ignored.extend(rejected);
    batch.changes.push(WhatsAppChange {
        phone_number_id: phone_number_id.to_owned(),
        display_phone_number: non_empty(value.pointer("/metadata/display_phone_number"))
            .map(str::to_owned),
        messages,
        statuses,
    });
}

/// Parses every item of the array `value[key]`; items `parse` rejects (and a `key` that is not
/// an array) go to `rejected`.
fn parse_items<T>(
    value: &Value,
    key: &str,
    rejected: &mut Vec<Value>,
    parse: impl Fn(&Value) -> Option<T>,
) -> Vec<T> {
    let Some(field) = value.get(key) else {
        return Vec::new();
    };
    let Some(items) = field.as_array() else {
        rejected.push(field.clone());
        return Vec::new();
    };
    let mut parsed = Vec::with_capacity(items.len());
    for item in items {
        match parse(item) {
            Some(p) => parsed.push(p),
            None => rejected.push(item.clone()),
        }
    }
    parsed
}

fn parse_message(message: &Value, contacts: &[Value]) -> Option<WhatsAppInbound> {
    let provider_message_id = non_empty(message.get("id"))?;
    let from = non_empty(message.get("from"))?;
    let sent_at = unix_seconds(message.get("timestamp")?)?;
    let kind = non_empty(message.get("type"))?;
    let mut content = parse_content(message, kind)?;

    if content.reply_to_provider_id.is_none() {
        content.reply_to_provider_id = non_empty(message.pointer("/context/id")).map(str::to_owned);
    }
    if let Some(referral) = message.get("referral").filter(|r| r.is_object()) {
        merge_data(&mut content.data, "referral", referral.clone());
    }
    let profile_name = contacts
        .iter()
        .find(|c| c.get("wa_id").and_then(Value::as_str) == Some(from))
        .and_then(|c| non_empty(c.pointer("/profile/name")))
        .map(str::to_owned);

    Some(WhatsAppInbound {
        provider_message_id: provider_message_id.to_owned(),
        from: from.to_owned(),
        profile_name,
        sent_at,
        content,
        raw: message.clone(),
    })
}

/// Maps a message by its `type`; `None` when the type's own object is missing or malformed.
fn parse_content(message: &Value, kind: &str) -> Option<InboundContent> {
    match kind {
        "text" => {
            let body = message.pointer("/text/body")?.as_str()?;
            Some(inbound(MessageType::Text, Some(body), None))
        }
        "image" => media(message, kind, MessageType::Image),
        "video" => media(message, kind, MessageType::Video),
        "audio" | "voice" => media(message, kind, MessageType::Audio),
        "document" => media(message, kind, MessageType::Document),
        "sticker" => media(message, kind, MessageType::Sticker),
        "location" => location(message.get("location")?),
        "contacts" => contacts(message.get("contacts")?),
        "interactive" => interactive(message.get("interactive")?),
        "button" => button(message.get("button")?),
        "reaction" => reaction(message.get("reaction")?),
        "order" => order(message.get("order")?),
        "system" => system(message.get("system")?),
        _ => Some(unsupported(message, kind)),
    }
}

fn inbound(
    message_type: MessageType,
    content: Option<&str>,
    data: Option<Value>,
) -> InboundContent {
    InboundContent {
        message_type,
        content: content.map(str::to_owned),
        media: None,
        reply_to_provider_id: None,
        data,
    }
}

/// `image`, `video`, `audio` (and the legacy `voice`), `document`, `sticker`.
fn media(message: &Value, kind: &str, message_type: MessageType) -> Option<InboundContent> {
    let object = message.get(kind).filter(|o| o.is_object())?;
    let text = |key: &str| non_empty(object.get(key)).map(str::to_owned);
    let is_voice = kind == "voice" || object.get("voice").and_then(Value::as_bool) == Some(true);
    let mut content = inbound(
        message_type,
        non_empty(object.get("caption")),
        is_voice.then(|| json!({ "voice": true })),
    );
    content.media = Some(InboundMedia {
        provider_media_id: text("id"),
        url: text("url"),
        mime_type: text("mime_type"),
        sha256: text("sha256"),
        filename: text("filename"),
    });
    Some(content)
}

fn location(location: &Value) -> Option<InboundContent> {
    let object = location.as_object()?;
    let data: Map<String, Value> = ["latitude", "longitude", "name", "address", "url"]
        .into_iter()
        .filter_map(|key| {
            object
                .get(key)
                .filter(|v| !v.is_null())
                .map(|v| (key.to_owned(), v.clone()))
        })
        .collect();
    let label = non_empty(location.get("name")).or_else(|| non_empty(location.get("address")));
    Some(inbound(
        MessageType::Location,
        label,
        Some(Value::Object(data)),
    ))
}

fn contacts(contacts: &Value) -> Option<InboundContent> {
    let first = contacts.as_array()?.first();
    let name = first.and_then(|c| {
        non_empty(c.pointer("/name/formatted_name")).or_else(|| non_empty(c.get("formatted_name")))
    });
    Some(inbound(
        MessageType::Contacts,
        name,
        Some(json!({ "contacts": contacts })),
    ))
}

/// `button_reply` and `list_reply` are normalised; other replies (e.g. a flow's `nfm_reply`)
/// keep the whole `interactive` object as data.
fn interactive(interactive: &Value) -> Option<InboundContent> {
    let kind = non_empty(interactive.get("type"))?;
    if !matches!(kind, "button_reply" | "list_reply") {
        let body = non_empty(interactive.get(kind).and_then(|r| r.get("body")));
        let data = json!({ "interactive": interactive });
        return Some(inbound(MessageType::Interactive, body, Some(data)));
    }
    let reply = interactive.get(kind)?;
    let id = reply.get("id")?.as_str()?;
    let title = reply.get("title")?.as_str()?;
    let mut data = json!({ "type": kind, "id": id, "title": title });
    if let (Some(description), Value::Object(map)) = (reply.get("description"), &mut data) {
        if description.is_string() {
            map.insert("description".to_owned(), description.clone());
        }
    }
    Some(inbound(
        MessageType::Interactive,
        Some(title),
        Some(json!({ "interactive": data })),
    ))
}

/// A template quick-reply button press.
fn button(button: &Value) -> Option<InboundContent> {
    let text = button.get("text")?.as_str()?;
    let payload = button.get("payload").cloned().unwrap_or(Value::Null);
    let data = json!({ "button": { "text": text, "payload": payload } });
    Some(inbound(MessageType::Button, Some(text), Some(data)))
}

/// A reaction; an absent emoji means the customer removed their reaction.
fn reaction(reaction: &Value) -> Option<InboundContent> {
    let message_id = non_empty(reaction.get("message_id"))?;
    let emoji = reaction.get("emoji").and_then(Value::as_str).unwrap_or("");
    let mut content = inbound(MessageType::Reaction, Some(emoji), None);
    content.reply_to_provider_id = Some(message_id.to_owned());
    Some(content)
}

fn order(order: &Value) -> Option<InboundContent> {
    if !order.is_object() {
        return None;
    }
    let text = non_empty(order.get("text"));
    Some(inbound(
        MessageType::Order,
        text,
        Some(json!({ "order": order })),
    ))
}

/// A system notice (e.g. `user_changed_number`); the object is kept as data.
fn system(system: &Value) -> Option<InboundContent> {
    if !system.is_object() {
        return None;
    }
    let body = non_empty(system.get("body"));
    Some(inbound(
        MessageType::System,
        body,
        Some(json!({ "system": system })),
    ))
}

fn unsupported(message: &Value, kind: &str) -> InboundContent {
    let mut data = Map::new();
    data.insert("provider_type".to_owned(), Value::from(kind));
    if let Some(errors) = message.get("errors").filter(|e| !e.is_null()) {
        data.insert("errors".to_owned(), errors.clone());
    }
    inbound(MessageType::Unsupported, None, Some(Value::Object(data)))
}

fn parse_status(status: &Value) -> Option<WhatsAppStatus> {
    let provider_message_id = non_empty(status.get("id"))?;
    let recipient_id = non_empty(status.get("recipient_id"))?;
    let message_status = match status.get("status")?.as_str()? {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" | "played" => MessageStatus::Read,
        "failed" => MessageStatus::Failed,
        _ => return None,
    };
    let occurred_at = unix_seconds(status.get("timestamp")?)?;
    let error = (message_status == MessageStatus::Failed)
        .then(|| status.pointer("/errors/0"))
        .flatten();
    let error_code = error.and_then(|e| e.get("code")).and_then(integer);
    let error_title = error
        .and_then(|e| non_empty(e.get("title")).or_else(|| non_empty(e.get("message"))))
        .map(str::to_owned);

    Some(WhatsAppStatus {
        recipient_id: recipient_id.to_owned(),
        status: ProviderStatus {
            provider_message_id: provider_message_id.to_owned(),
            status: message_status,
            occurred_at,
            error_code,
            error_title,
        },
        raw: status.clone(),
    })
}

/// Sets `data[key] = value`, creating the object if needed.
fn merge_data(data: &mut Option<Value>, key: &str, value: Value) {
    match data {
        Some(Value::Object(map)) => {
            map.insert(key.to_owned(), value);
        }
        Some(other) => *data = Some(json!({ "value": other.take(), key: value })),
        None => *data = Some(json!({ key: value })),
    }
}

/// A non-empty string value.
fn non_empty(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// An integer given as a JSON number or a decimal string.
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Meta's timestamps: unix seconds, usually as a string.
fn unix_seconds(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(integer(value)?, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHONE_NUMBER_ID: &str = "106540352242922";
    const CUSTOMER: &str = "6281234567890";

    /// A one-change payload carrying `messages`, as Meta sends it.
    fn envelope(messages: Value) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": "102290129340398",
                "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "15550783881",
                            "phone_number_id": PHONE_NUMBER_ID
                        },
                        "contacts": [{"profile": {"name": "Sari Wulandari"}, "wa_id": CUSTOMER}],
                        "messages": messages
                    },
                    "field": "messages"
                }]
            }]
        })
    }

    /// A message from the customer with the given type-specific fields merged in.
    fn message(fields: Value) -> Value {
        let mut m = json!({
            "from": CUSTOMER,
            "id": "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjBDNzE2RjI4N0EwNjQ4QjEyQjUA",
            "timestamp": "1730231903"
        });
        if let (Value::Object(m), Value::Object(f)) = (&mut m, fields) {
            m.extend(f);
        }
        m
    }

    /// Parses one message and asserts nothing was ignored.
    fn single(fields: Value) -> WhatsAppInbound {
        let msg = message(fields);
        let batch = parse_whatsapp(&envelope(json!([msg.clone()])));
        assert!(batch.ignored.is_empty(), "ignored: {:?}", batch.ignored);
        assert_eq!(batch.changes.len(), 1);
        let change = &batch.changes[0];
        assert_eq!(change.messages.len(), 1);
        let inbound = change.messages[0].clone();
        assert_eq!(inbound.raw, msg);
        inbound
    }

    #[test]
    fn real_pywa_payload_parses() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}"#;
        let payload: Value = serde_json::from_str(body).expect("valid JSON");
        let batch = parse_whatsapp(&payload);
        assert!(batch.ignored.is_empty());
        let change = &batch.changes[0];
        assert_eq!(change.phone_number_id, "277321005464405");
        assert_eq!(change.display_phone_number.as_deref(), Some("15550953877"));
        assert!(change.statuses.is_empty());
        let m = &change.messages[0];
        assert_eq!(
            m.provider_message_id,
            "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
        );
        assert_eq!(m.from, "972544401243");
        assert_eq!(m.profile_name.as_deref(), Some("PyWa Tests"));
        assert_eq!(m.sent_at.timestamp(), 1_730_231_903);
        assert_eq!(m.sent_at.to_rfc3339(), "2024-10-29T19:58:23+00:00");
        assert_eq!(
            m.content,
            InboundContent {
                message_type: MessageType::Text,
                content: Some("Hey there! I am using PyWa.".into()),
                media: None,
                reply_to_provider_id: None,
                data: None,
            }
        );
    }

    #[test]
    fn text() {
        let m =
            single(json!({"type": "text", "text": {"body": "Halo, pesanan saya sudah dikirim?"}}));
        assert_eq!(m.content.message_type, MessageType::Text);
        assert_eq!(
            m.content.content.as_deref(),
            Some("Halo, pesanan saya sudah dikirim?")
        );
        assert_eq!(m.from, CUSTOMER);
        assert_eq!(m.profile_name.as_deref(), Some("Sari Wulandari"));
        assert_eq!(m.content.reply_to_provider_id, None);
        assert_eq!(m.content.data, None);
    }

    #[test]
    fn image_with_caption() {
        let m = single(json!({"type": "image", "image": {
            "caption": "Struk transfer",
            "mime_type": "image/jpeg",
            "sha256": "Wp4u0wnYbkHtEdOm0LhhuAkRH2TEbZGnHTwcXbt3fLI=",
            "id": "1479537139650973"
        }}));
        assert_eq!(m.content.message_type, MessageType::Image);
        assert_eq!(m.content.content.as_deref(), Some("Struk transfer"));
        assert_eq!(
            m.content.media,
            Some(InboundMedia {
                provider_media_id: Some("1479537139650973".into()),
                url: None,
                mime_type: Some("image/jpeg".into()),
                sha256: Some("Wp4u0wnYbkHtEdOm0LhhuAkRH2TEbZGnHTwcXbt3fLI=".into()),
                filename: None,
            })
        );
        assert_eq!(m.content.data, None);
    }

    #[test]
    fn video_without_caption() {
        let m = single(json!({"type": "video", "video": {
            "mime_type": "video/mp4",
            "sha256": "fRpbnJ2Ek2yUVf9T6FsmNl/KfcTFDmCsYH1m+Bpg2sE=",
            "id": "2087212318463185"
        }}));
        assert_eq!(m.content.message_type, MessageType::Video);
        assert_eq!(m.content.content, None);
        let media = m.content.media.expect("media");
        assert_eq!(media.provider_media_id.as_deref(), Some("2087212318463185"));
        assert_eq!(media.mime_type.as_deref(), Some("video/mp4"));
    }

    #[test]
    fn audio_and_voice_notes() {
        let m = single(json!({"type": "audio", "audio": {
            "mime_type": "audio/ogg; codecs=opus",
            "sha256": "P0tJ1yKMDFXtB1oP4KOEw5Jxfds8Q7pnQZ0DHyyExMg=",
            "id": "1034417454880221",
            "voice": true
        }}));
        assert_eq!(m.content.message_type, MessageType::Audio);
        assert_eq!(m.content.data, Some(json!({"voice": true})));
        let media = m.content.media.expect("media");
        assert_eq!(media.provider_media_id.as_deref(), Some("1034417454880221"));
        assert_eq!(media.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));

        let m = single(json!({"type": "audio", "audio": {
            "mime_type": "audio/mpeg", "sha256": "abc=", "id": "555", "voice": false
        }}));
        assert_eq!(m.content.message_type, MessageType::Audio);
        assert_eq!(m.content.data, None);

        // Legacy On-Premises shape: `type: voice` with a `voice` object.
        let m = single(json!({"type": "voice", "voice": {
            "mime_type": "audio/ogg; codecs=opus", "sha256": "def=", "id": "777"
        }}));
        assert_eq!(m.content.message_type, MessageType::Audio);
        assert_eq!(m.content.data, Some(json!({"voice": true})));
        assert_eq!(
            m.content.media.and_then(|x| x.provider_media_id).as_deref(),
            Some("777")
        );
    }

    #[test]
    fn document_with_filename() {
        let m = single(json!({"type": "document", "document": {
            "caption": "Invoice Oktober",
            "filename": "INV-2024-10.pdf",
            "mime_type": "application/pdf",
            "sha256": "t1JrhQbpgvPF4oFYvOzBTRLafMGgxqGnKnbC3fHp5ws=",
            "id": "880213454006325"
        }}));
        assert_eq!(m.content.message_type, MessageType::Document);
        assert_eq!(m.content.content.as_deref(), Some("Invoice Oktober"));
        let media = m.content.media.expect("media");
        assert_eq!(media.filename.as_deref(), Some("INV-2024-10.pdf"));
        assert_eq!(media.mime_type.as_deref(), Some("application/pdf"));
        assert_eq!(media.provider_media_id.as_deref(), Some("880213454006325"));
    }

    #[test]
    fn media_is_named_by_the_url_it_is_stored_under() {
        let m = single(json!({"type": "image", "image": {
            "mime_type": "image/jpeg", "sha256": "abc=", "id": "1479537139650973"
        }}));
        let message_id = Uuid::from_u128(7);
        let content = m.content_for(message_id);
        let media = content.media.expect("media");
        assert_eq!(
            media.url,
            Some(media_url(attachment_id(message_id, 0))),
            "the same on every attempt"
        );
        assert_eq!(media.provider_media_id.as_deref(), Some("1479537139650973"));
        let text = single(json!({"type": "text", "text": {"body": "hi"}}));
        assert_eq!(text.content_for(message_id), text.content);
    }

    #[test]
    fn sticker() {
        let m = single(json!({"type": "sticker", "sticker": {
            "mime_type": "image/webp",
            "sha256": "4L6Mb2Vsh3Ae9EMu5pZO7vGa4D0rl/bnRkQfi8J6PqE=",
            "id": "1131349534756245",
            "animated": false
        }}));
        assert_eq!(m.content.message_type, MessageType::Sticker);
        assert_eq!(m.content.content, None);
        assert_eq!(
            m.content.media.and_then(|x| x.mime_type).as_deref(),
            Some("image/webp")
        );
    }

    #[test]
    fn location_keeps_present_fields() {
        let m = single(json!({"type": "location", "location": {
            "latitude": -6.175392,
            "longitude": 106.827153,
            "name": "Monumen Nasional",
            "address": "Gambir, Jakarta Pusat",
            "url": "https://monas.jakarta.go.id"
        }}));
        assert_eq!(m.content.message_type, MessageType::Location);
        assert_eq!(m.content.content.as_deref(), Some("Monumen Nasional"));
        assert_eq!(
            m.content.data,
            Some(json!({
                "latitude": -6.175392,
                "longitude": 106.827153,
                "name": "Monumen Nasional",
                "address": "Gambir, Jakarta Pusat",
                "url": "https://monas.jakarta.go.id"
            }))
        );

        let m = single(json!({"type": "location", "location": {
            "latitude": -6.2, "longitude": 106.8, "address": "Jl. Sudirman 1"
        }}));
        assert_eq!(m.content.content.as_deref(), Some("Jl. Sudirman 1"));
        assert_eq!(
            m.content.data,
            Some(json!({"latitude": -6.2, "longitude": 106.8, "address": "Jl. Sudirman 1"}))
        );

        // A pinned live-location point has only coordinates.
        let m =
            single(json!({"type": "location", "location": {"latitude": 1.0, "longitude": 2.0}}));
        assert_eq!(m.content.content, None);
        assert_eq!(
            m.content.data,
            Some(json!({"latitude": 1.0, "longitude": 2.0}))
        );
    }

    #[test]
    fn contacts_card() {
        let cards = json!([{
            "addresses": [{"city": "Menlo Park", "country": "United States", "country_code": "us",
                           "state": "CA", "street": "1 Hacker Way", "type": "WORK", "zip": "94025"}],
            "birthday": "2012-08-18",
            "emails": [{"email": "kfitz@example.com", "type": "WORK"}],
            "name": {"formatted_name": "Kerry Fitzgerald", "first_name": "Kerry", "last_name": "Fitzgerald"},
            "org": {"company": "Meta", "department": "Sales", "title": "Manager"},
            "phones": [{"phone": "+1 (650) 555-1234", "wa_id": "16505551234", "type": "WORK"}],
            "urls": [{"url": "https://www.meta.com", "type": "WORK"}]
        }, {
            "name": {"formatted_name": "Budi", "first_name": "Budi"},
            "phones": [{"phone": "+62 812-0000-0000", "type": "CELL"}]
        }]);
        let m = single(json!({"type": "contacts", "contacts": cards.clone()}));
        assert_eq!(m.content.message_type, MessageType::Contacts);
        assert_eq!(m.content.content.as_deref(), Some("Kerry Fitzgerald"));
        assert_eq!(m.content.data, Some(json!({"contacts": cards})));
    }

    #[test]
    fn interactive_button_reply() {
        let m = single(json!({
            "context": {"from": "15550783881", "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJBRkFCNjQzQkE5NUQ0RDMxRTAA"},
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "confirm_yes", "title": "Ya, konfirmasi"}}
        }));
        assert_eq!(m.content.message_type, MessageType::Interactive);
        assert_eq!(m.content.content.as_deref(), Some("Ya, konfirmasi"));
        assert_eq!(
            m.content.data,
            Some(
                json!({"interactive": {"type": "button_reply", "id": "confirm_yes", "title": "Ya, konfirmasi"}})
            )
        );
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJBRkFCNjQzQkE5NUQ0RDMxRTAA")
        );
    }

    #[test]
    fn interactive_list_reply() {
        let m = single(json!({
            "context": {"from": "15550783881", "id": "wamid.LIST"},
            "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {
                "id": "ship_express", "title": "Express", "description": "Tiba besok, Rp25.000"
            }}
        }));
        assert_eq!(m.content.message_type, MessageType::Interactive);
        assert_eq!(m.content.content.as_deref(), Some("Express"));
        assert_eq!(
            m.content.data,
            Some(json!({"interactive": {
                "type": "list_reply", "id": "ship_express", "title": "Express",
                "description": "Tiba besok, Rp25.000"
            }}))
        );
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.LIST")
        );
    }

    #[test]
    fn interactive_flow_reply_keeps_the_object() {
        let interactive = json!({"type": "nfm_reply", "nfm_reply": {
            "response_json": "{\"flow_token\":\"abc\",\"rating\":\"5\"}", "body": "Sent", "name": "flow"
        }});
        let m = single(json!({"type": "interactive", "interactive": interactive.clone()}));
        assert_eq!(m.content.message_type, MessageType::Interactive);
        assert_eq!(m.content.content.as_deref(), Some("Sent"));
        assert_eq!(m.content.data, Some(json!({"interactive": interactive})));
    }

    #[test]
    fn template_quick_reply_button() {
        let m = single(json!({
            "context": {"from": "15550783881", "id": "wamid.TEMPLATE"},
            "type": "button",
            "button": {"text": "Tidak", "payload": "No-Button-Payload"}
        }));
        assert_eq!(m.content.message_type, MessageType::Button);
        assert_eq!(m.content.content.as_deref(), Some("Tidak"));
        assert_eq!(
            m.content.data,
            Some(json!({"button": {"text": "Tidak", "payload": "No-Button-Payload"}}))
        );
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.TEMPLATE")
        );
    }

    #[test]
    fn reaction_and_removed_reaction() {
        let m = single(json!({"type": "reaction", "reaction": {
            "message_id": "wamid.REACTED", "emoji": "\u{1F44D}"
        }}));
        assert_eq!(m.content.message_type, MessageType::Reaction);
        assert_eq!(m.content.content.as_deref(), Some("\u{1F44D}"));
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.REACTED")
        );
        assert_eq!(m.content.data, None);

        let m = single(json!({"type": "reaction", "reaction": {"message_id": "wamid.REACTED"}}));
        assert_eq!(m.content.content.as_deref(), Some(""));
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.REACTED")
        );
    }

    #[test]
    fn reaction_target_wins_over_context() {
        let m = single(json!({
            "context": {"id": "wamid.CONTEXT"},
            "type": "reaction",
            "reaction": {"message_id": "wamid.REACTED", "emoji": "\u{2764}\u{FE0F}"}
        }));
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.REACTED")
        );
    }

    #[test]
    fn order() {
        let order = json!({
            "catalog_id": "1502392003629584",
            "text": "Tolong kirim hari ini",
            "product_items": [
                {"product_retailer_id": "SKU-KOPI-250", "quantity": 2, "item_price": 85000, "currency": "IDR"},
                {"product_retailer_id": "SKU-GELAS", "quantity": 1, "item_price": 45000, "currency": "IDR"}
            ]
        });
        let m = single(json!({
            "context": {"from": "15550783881", "id": "wamid.CATALOG"},
            "type": "order",
            "order": order.clone()
        }));
        assert_eq!(m.content.message_type, MessageType::Order);
        assert_eq!(m.content.content.as_deref(), Some("Tolong kirim hari ini"));
        assert_eq!(m.content.data, Some(json!({"order": order})));
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.CATALOG")
        );

        let m = single(json!({"type": "order", "order": {"catalog_id": "1", "product_items": []}}));
        assert_eq!(m.content.content, None);
    }

    #[test]
    fn unsupported_keeps_type_and_errors() {
        let errors = json!([{
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "error_data": {"details": "Message type is currently not supported."}
        }]);
        let m = single(json!({"type": "unsupported", "errors": errors.clone()}));
        assert_eq!(m.content.message_type, MessageType::Unsupported);
        assert_eq!(m.content.content, None);
        assert_eq!(
            m.content.data,
            Some(json!({"provider_type": "unsupported", "errors": errors}))
        );
    }

    #[test]
    fn unknown_type_is_unsupported() {
        let m = single(json!({"type": "request_welcome"}));
        assert_eq!(m.content.message_type, MessageType::Unsupported);
        assert_eq!(
            m.content.data,
            Some(json!({"provider_type": "request_welcome"}))
        );
    }

    #[test]
    fn system_number_change() {
        let system = json!({
            "body": "Sari changed from 6281234567890 to 6289876543210",
            "new_wa_id": "6289876543210",
            "type": "user_changed_number"
        });
        let m = single(json!({"type": "system", "system": system.clone()}));
        assert_eq!(m.content.message_type, MessageType::System);
        assert_eq!(
            m.content.content.as_deref(),
            Some("Sari changed from 6281234567890 to 6289876543210")
        );
        assert_eq!(m.content.data, Some(json!({"system": system})));
    }

    #[test]
    fn context_reply_and_forwarded() {
        let m = single(json!({
            "context": {"from": "15550783881", "id": "wamid.QUOTED"},
            "type": "text", "text": {"body": "yang ini"}
        }));
        assert_eq!(
            m.content.reply_to_provider_id.as_deref(),
            Some("wamid.QUOTED")
        );

        let m = single(json!({
            "context": {"forwarded": true, "frequently_forwarded": false},
            "type": "text", "text": {"body": "diteruskan"}
        }));
        assert_eq!(m.content.reply_to_provider_id, None);
        assert_eq!(m.content.content.as_deref(), Some("diteruskan"));
    }

    #[test]
    fn referral_is_merged_into_data() {
        let referral = json!({
            "source_url": "https://fb.me/3cr4Wqqkv",
            "source_id": "120226305854810726",
            "source_type": "ad",
            "headline": "Promo Kopi 11.11",
            "body": "Diskon 50% hari ini",
            "media_type": "image",
            "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/ad.jpg",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-ZABe0PP-Kp-sVTGv"
        });
        let m = single(
            json!({"referral": referral.clone(), "type": "text", "text": {"body": "Info promo"}}),
        );
        assert_eq!(m.content.message_type, MessageType::Text);
        assert_eq!(m.content.data, Some(json!({"referral": referral.clone()})));

        let m = single(json!({
            "referral": referral.clone(),
            "type": "location",
            "location": {"latitude": 1.5, "longitude": 2.5}
        }));
        assert_eq!(
            m.content.data,
            Some(json!({"latitude": 1.5, "longitude": 2.5, "referral": referral}))
        );
    }

    #[test]
    fn merge_data_wraps_a_non_object() {
        let mut data = Some(json!("scalar"));
        merge_data(&mut data, "referral", json!({"a": 1}));
        assert_eq!(data, Some(json!({"value": "scalar", "referral": {"a": 1}})));
    }

    #[test]
    fn profile_name_matches_sender_only() {
        let mut payload = envelope(json!([message(
            json!({"type": "text", "text": {"body": "hi"}})
        )]));
        payload["entry"][0]["changes"][0]["value"]["contacts"] =
            json!([{"profile": {"name": "Someone Else"}, "wa_id": "6280000000000"}]);
        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes[0].messages[0].profile_name, None);
    }

    fn status(id: &str, status: &str, timestamp: &str) -> Value {
        json!({
            "id": id,
            "status": status,
            "timestamp": timestamp,
            "recipient_id": CUSTOMER,
            "conversation": {"id": "c5c6a4a1c1d2e3f4", "origin": {"type": "service"}},
            "pricing": {"billable": true, "pricing_model": "CBP", "category": "service"}
        })
    }

    fn statuses_payload(statuses: Value) -> Value {
        json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                    "statuses": statuses
                },
                "field": "messages"
            }]}]
        })
    }

    #[test]
    fn statuses_sent_delivered_read_played() {
        let batch = parse_whatsapp(&statuses_payload(json!([
            status("wamid.A", "sent", "1730231000"),
            status("wamid.A", "delivered", "1730231001"),
            status("wamid.A", "read", "1730231002"),
            status("wamid.B", "played", "1730231003"),
        ])));
        assert!(batch.ignored.is_empty());
        let change = &batch.changes[0];
        assert!(change.messages.is_empty());
        let got: Vec<_> = change
            .statuses
            .iter()
            .map(|s| {
                (
                    s.status.provider_message_id.as_str(),
                    s.status.status,
                    s.status.occurred_at.timestamp(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("wamid.A", MessageStatus::Sent, 1_730_231_000),
                ("wamid.A", MessageStatus::Delivered, 1_730_231_001),
                ("wamid.A", MessageStatus::Read, 1_730_231_002),
                ("wamid.B", MessageStatus::Read, 1_730_231_003),
            ]
        );
        for s in &change.statuses {
            assert_eq!(s.recipient_id, CUSTOMER);
            assert_eq!(s.status.error_code, None);
            assert_eq!(s.status.error_title, None);
        }
        assert_eq!(
            change.statuses[0].raw,
            status("wamid.A", "sent", "1730231000")
        );
    }

    #[test]
    fn failed_status_carries_the_error() {
        let failed = json!({
            "id": "wamid.FAILED",
            "status": "failed",
            "timestamp": "1730231100",
            "recipient_id": CUSTOMER,
            "errors": [{
                "code": 131026,
                "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."},
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
            }]
        });
        let batch = parse_whatsapp(&statuses_payload(json!([failed.clone()])));
        let s = &batch.changes[0].statuses[0];
        assert_eq!(
            s.status,
            ProviderStatus {
                provider_message_id: "wamid.FAILED".into(),
                status: MessageStatus::Failed,
                occurred_at: DateTime::from_timestamp(1_730_231_100, 0).expect("in range"),
                error_code: Some(131026),
                error_title: Some("Message undeliverable".into()),
            }
        );
        assert_eq!(s.raw, failed);

        // Without a title the message is used; without errors both stay empty.
        let batch = parse_whatsapp(&statuses_payload(json!([
            {"id": "wamid.F2", "status": "failed", "timestamp": "1730231101", "recipient_id": CUSTOMER,
             "errors": [{"code": 131047, "message": "Re-engagement message"}]},
            {"id": "wamid.F3", "status": "failed", "timestamp": "1730231102", "recipient_id": CUSTOMER}
        ])));
        let statuses = &batch.changes[0].statuses;
        assert_eq!(statuses[0].status.error_code, Some(131047));
        assert_eq!(
            statuses[0].status.error_title.as_deref(),
            Some("Re-engagement message")
        );
        assert_eq!(statuses[1].status.status, MessageStatus::Failed);
        assert_eq!(statuses[1].status.error_code, None);
        assert_eq!(statuses[1].status.error_title, None);
    }

    #[test]
    fn unknown_status_is_ignored() {
        let deleted = status("wamid.D", "deleted", "1730231200");
        let batch = parse_whatsapp(&statuses_payload(json!([
            status("wamid.S", "sent", "1730231200"),
            deleted.clone(),
        ])));
        assert_eq!(batch.changes[0].statuses.len(), 1);
        assert_eq!(batch.ignored, vec![deleted]);
    }

    #[test]
    fn batch_with_messages_statuses_and_two_entries() {
        let payload = json!({
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "102290129340398", "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                        "contacts": [
                            {"profile": {"name": "Sari Wulandari"}, "wa_id": CUSTOMER},
                            {"profile": {"name": "Budi Santoso"}, "wa_id": "6285711112222"}
                        ],
                        "messages": [
                            {"from": CUSTOMER, "id": "wamid.M1", "timestamp": "1730231903",
                             "type": "text", "text": {"body": "Pesanan #1234?"}},
                            {"from": "6285711112222", "id": "wamid.M2", "timestamp": "1730231905",
                             "type": "image", "image": {"id": "999", "mime_type": "image/png", "sha256": "x="}}
                        ],
                        "statuses": [
                            status("wamid.OUT1", "delivered", "1730231904"),
                            status("wamid.OUT2", "read", "1730231906")
                        ]
                    },
                    "field": "messages"
                }]},
                {"id": "102290129340399", "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "200000000000001"},
                        "contacts": [{"profile": {"name": "Rina"}, "wa_id": "6281300000000"}],
                        "messages": [{"from": "6281300000000", "id": "wamid.M3", "timestamp": 1730231910,
                                      "type": "text", "text": {"body": "Halo"}}]
                    },
                    "field": "messages"
                }]}
            ]
        });
        let batch = parse_whatsapp(&payload);
        assert!(batch.ignored.is_empty());
        assert_eq!(batch.changes.len(), 2);

        let first = &batch.changes[0];
        assert_eq!(first.phone_number_id, PHONE_NUMBER_ID);
        let ids: Vec<_> = first
            .messages
            .iter()
            .map(|m| m.provider_message_id.as_str())
            .collect();
        assert_eq!(ids, ["wamid.M1", "wamid.M2"]);
        let names: Vec<_> = first
            .messages
            .iter()
            .map(|m| m.profile_name.as_deref())
            .collect();
        assert_eq!(names, [Some("Sari Wulandari"), Some("Budi Santoso")]);
        assert_eq!(first.messages[1].content.message_type, MessageType::Image);
        let statuses: Vec<_> = first
            .statuses
            .iter()
            .map(|s| (s.status.provider_message_id.as_str(), s.status.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("wamid.OUT1", MessageStatus::Delivered),
                ("wamid.OUT2", MessageStatus::Read)
            ]
        );

        let second = &batch.changes[1];
        assert_eq!(second.phone_number_id, "200000000000001");
        assert_eq!(second.display_phone_number.as_deref(), Some("15550001111"));
        assert_eq!(second.messages[0].profile_name.as_deref(), Some("Rina"));
        // A numeric timestamp is accepted too.
        assert_eq!(second.messages[0].sent_at.timestamp(), 1_730_231_910);
    }

    #[test]
    fn template_status_update_is_ignored_whole() {
        let template_change = json!({
            "value": {
                "event": "APPROVED",
                "message_template_id": 1689556908129832_i64,
                "message_template_name": "order_confirmation",
                "message_template_language": "id",
                "reason": "NONE"
            },
            "field": "message_template_status_update"
        });
        let mut payload = envelope(json!([message(
            json!({"type": "text", "text": {"body": "hi"}})
        )]));
        payload["entry"][0]["changes"]
            .as_array_mut()
            .expect("changes")
            .push(template_change.clone());
        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.changes[0].messages.len(), 1);
        assert_eq!(batch.ignored, vec![template_change]);
    }

    #[test]
    fn other_objects_are_ignored_whole() {
        let page = json!({"object": "page", "entry": [{"id": "1", "time": 1, "messaging": []}]});
        let batch = parse_whatsapp(&page);
        assert!(batch.changes.is_empty());
        assert_eq!(batch.ignored, vec![page]);
    }

    #[test]
    fn garbage_never_panics() {
        let garbage = [
            Value::Null,
            json!(42),
            json!("whatsapp_business_account"),
            json!([]),
            json!({}),
            json!({"object": 7, "entry": []}),
            json!({"object": "whatsapp_business_account"}),
            json!({"object": "whatsapp_business_account", "entry": {"changes": []}}),
            json!({"object": "whatsapp_business_account", "entry": [null, 1, "x", {}, {"changes": "no"}]}),
            json!({"object": "whatsapp_business_account", "entry": [{"changes": [null, 3, [], {}]}]}),
            json!({"object": "whatsapp_business_account", "entry": [{"changes": [
                {"field": "messages"},
                {"field": "messages", "value": null},
                {"field": "messages", "value": "text"},
                {"field": "messages", "value": {"messages": []}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": 5}}},
                {"field": "messages", "value": {"metadata": {"phone_number_id": ""}}},
                {"field": ["messages"], "value": {}}
            ]}]}),
        ];
        for payload in &garbage {
            let batch = parse_whatsapp(payload);
            assert!(batch.changes.is_empty(), "{payload}");
            assert!(!batch.ignored.is_empty(), "{payload}");
        }
        // An entry list that is empty is simply nothing.
        let empty = parse_whatsapp(&json!({"object": "whatsapp_business_account", "entry": []}));
        assert_eq!(empty, WhatsAppBatch::default());
    }

    #[test]
    fn malformed_messages_and_statuses_go_to_ignored() {
        let bad_messages = vec![
            Value::Null,
            json!("wamid.X"),
            json!({}),
            message(json!({"type": "text"})),
            message(json!({"type": "text", "text": {"body": 12}})),
            message(json!({"type": "text", "text": "plain"})),
            message(json!({"type": "image"})),
            message(json!({"type": "image", "image": "id"})),
            message(json!({"type": "location", "location": [1, 2]})),
            message(json!({"type": "contacts", "contacts": {"name": "x"}})),
            message(json!({"type": "interactive", "interactive": {}})),
            message(json!({"type": "interactive", "interactive": {"type": "button_reply"}})),
            message(
                json!({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {"id": 1, "title": "t"}}}),
            ),
            message(json!({"type": "button", "button": {"payload": "p"}})),
            message(json!({"type": "reaction", "reaction": {"emoji": "x"}})),
            message(json!({"type": "order", "order": "o"})),
            message(json!({"type": "system", "system": "s"})),
            message(json!({"type": 3})),
            message(json!({"text": {"body": "no type"}})),
            json!({"from": CUSTOMER, "timestamp": "1", "type": "text", "text": {"body": "no id"}}),
            json!({"id": "wamid.Y", "timestamp": "1", "type": "text", "text": {"body": "no from"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "type": "text", "text": {"body": "no ts"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "timestamp": "soon", "type": "text", "text": {"body": "x"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "timestamp": 1.5, "type": "text", "text": {"body": "x"}}),
            json!({"id": "wamid.Y", "from": CUSTOMER, "timestamp": "99999999999999999", "type": "text", "text": {"body": "x"}}),
            json!({"id": ["wamid"], "from": CUSTOMER, "timestamp": "1", "type": "text", "text": {"body": "x"}}),
        ];
        let bad_statuses = vec![
            Value::Null,
            json!({"status": "sent", "timestamp": "1", "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "sent", "timestamp": "1"}),
            json!({"id": "wamid.S", "status": 1, "timestamp": "1", "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "sent", "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "sent", "timestamp": {}, "recipient_id": CUSTOMER}),
            json!({"id": "wamid.S", "status": "failed", "timestamp": "1", "recipient_id": CUSTOMER, "errors": "boom"}),
        ];
        let good = message(json!({"type": "text", "text": {"body": "ok"}}));
        let mut messages = bad_messages.clone();
        messages.push(good.clone());
        let mut payload = envelope(Value::Array(messages));
        payload["entry"][0]["changes"][0]["value"]["statuses"] = Value::Array(bad_statuses.clone());

        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.changes[0].messages.len(), 1);
        assert_eq!(batch.changes[0].messages[0].raw, good);
        // A failed status whose `errors` is not an array is still a failure, without details.
        assert_eq!(batch.changes[0].statuses.len(), 1);
        assert_eq!(batch.changes[0].statuses[0].status.error_code, None);
        let mut expected = bad_messages;
        expected.extend(bad_statuses[..bad_statuses.len() - 1].iter().cloned());
        assert_eq!(batch.ignored, expected);
    }

    #[test]
    fn change_with_nothing_usable_is_ignored_whole() {
        let payload = envelope(json!([{"id": "wamid.only-garbage"}]));
        let batch = parse_whatsapp(&payload);
        assert!(batch.changes.is_empty());
        assert_eq!(
            batch.ignored,
            vec![payload["entry"][0]["changes"][0].clone()]
        );
    }

    #[test]
    fn non_array_messages_field_is_ignored() {
        let mut payload = statuses_payload(json!([status("wamid.S", "sent", "1730231000")]));
        payload["entry"][0]["changes"][0]["value"]["messages"] = json!({"id": "not-a-list"});
        let batch = parse_whatsapp(&payload);
        assert_eq!(batch.changes[0].statuses.len(), 1);
        assert_eq!(batch.ignored, vec![json!({"id": "not-a-list"})]);
    }
}
