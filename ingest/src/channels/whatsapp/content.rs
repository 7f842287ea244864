//! The content of a customer's message by its `type`: text, media (image, video, audio and
//! voice notes, documents, stickers), locations, contact cards, interactive and button replies,
//! reactions, orders and system notices; anything else is kept as `unsupported` with its type.

use omnistream_domain::{InboundContent, InboundMedia, MessageType};
use serde_json::{json, Map, Value};

use super::json::non_empty;

/// Maps a message by its `type`; `None` when the type's own object is missing or malformed.
pub(super) fn parse_content(message: &Value, kind: &str) -> Option<InboundContent> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::whatsapp::fixtures::{single, CUSTOMER};

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
}
