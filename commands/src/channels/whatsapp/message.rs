//! The pure builder of WhatsApp Cloud API send-message bodies.

use serde_json::{json, Map, Value};

/// What to send, before addressing.
#[derive(Debug, Clone, Copy)]
pub enum OutboundPayload<'a> {
    /// Plain text; link previews are off.
    Text { body: &'a str },
    /// Media by public link. `kind` is `image`, `video`, `audio`, `document` or `sticker`.
    /// `caption` is sent for image, video and document only (Meta rejects it on audio and
    /// sticker); `filename` for document only.
    Media {
        kind: &'a str,
        link: &'a str,
        caption: Option<&'a str>,
        filename: Option<&'a str>,
    },
    /// An approved template: Meta's `{name, language, components}` object, passed through.
    Template { template: &'a Value },
}

/// The `POST /{phone_number_id}/messages` body:
/// `{"messaging_product":"whatsapp","recipient_type":"individual","to":…,"type":…,<type>:{…}}`,
/// plus `"context":{"message_id":…}` when replying to (quoting) a message.
pub fn message_body(
    to: &str,
    payload: &OutboundPayload<'_>,
    reply_to_wamid: Option<&str>,
) -> Value {
    let (kind, content) = match *payload {
        OutboundPayload::Text { body } => ("text", json!({ "preview_url": false, "body": body })),
        OutboundPayload::Media {
            kind,
            link,
            caption,
            filename,
        } => {
            let mut media = Map::new();
            media.insert("link".into(), link.into());
            if let Some(caption) =
                caption.filter(|_| matches!(kind, "image" | "video" | "document"))
            {
                media.insert("caption".into(), caption.into());
            }
            if let Some(filename) = filename.filter(|_| kind == "document") {
                media.insert("filename".into(), filename.into());
            }
            (kind, Value::Object(media))
        }
        OutboundPayload::Template { template } => ("template", template.clone()),
    };
    let mut body = Map::new();
    body.insert("messaging_product".into(), "whatsapp".into());
    body.insert("recipient_type".into(), "individual".into());
    body.insert("to".into(), to.into());
    body.insert("type".into(), kind.into());
    body.insert(kind.to_owned(), content);
    if let Some(wamid) = reply_to_wamid {
        body.insert("context".into(), json!({ "message_id": wamid }));
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_body_shape() {
        assert_eq!(
            message_body("628111", &OutboundPayload::Text { body: "Hello" }, None),
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "628111",
                "type": "text",
                "text": {"preview_url": false, "body": "Hello"}
            })
        );
    }

    #[test]
    fn reply_adds_context() {
        let body = message_body(
            "628111",
            &OutboundPayload::Text { body: "Yes" },
            Some("wamid.ABC"),
        );
        assert_eq!(body["context"], json!({"message_id": "wamid.ABC"}));
        assert_eq!(body["text"]["body"], "Yes");
    }

    #[test]
    fn media_body_shapes() {
        let image = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "image",
                link: "https://cdn.example/a.jpg",
                caption: Some("look"),
                filename: Some("ignored.jpg"),
            },
            None,
        );
        assert_eq!(
            image,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "628111",
                "type": "image",
                "image": {"link": "https://cdn.example/a.jpg", "caption": "look"}
            })
        );

        let document = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "document",
                link: "https://cdn.example/invoice.pdf",
                caption: Some("Invoice"),
                filename: Some("invoice.pdf"),
            },
            Some("wamid.Q"),
        );
        assert_eq!(document["type"], "document");
        assert_eq!(
            document["document"],
            json!({"link": "https://cdn.example/invoice.pdf", "caption": "Invoice", "filename": "invoice.pdf"})
        );
        assert_eq!(document["context"]["message_id"], "wamid.Q");

        let sticker = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "sticker",
                link: "https://cdn.example/s.webp",
                caption: Some("dropped"),
                filename: None,
            },
            None,
        );
        assert_eq!(
            sticker["sticker"],
            json!({"link": "https://cdn.example/s.webp"})
        );

        let audio = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "audio",
                link: "https://cdn.example/v.ogg",
                caption: None,
                filename: None,
            },
            None,
        );
        assert_eq!(audio["type"], "audio");
        assert_eq!(audio["audio"], json!({"link": "https://cdn.example/v.ogg"}));

        let video = message_body(
            "628111",
            &OutboundPayload::Media {
                kind: "video",
                link: "https://cdn.example/v.mp4",
                caption: None,
                filename: None,
            },
            None,
        );
        assert_eq!(video["video"], json!({"link": "https://cdn.example/v.mp4"}));
    }

    #[test]
    fn template_body_passes_the_template_through() {
        let template = json!({
            "name": "order_update",
            "language": {"policy": "deterministic", "code": "id"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "A-1"}]}]
        });
        let body = message_body(
            "628111",
            &OutboundPayload::Template {
                template: &template,
            },
            None,
        );
        assert_eq!(
            body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "628111",
                "type": "template",
                "template": template
            })
        );
    }
}
