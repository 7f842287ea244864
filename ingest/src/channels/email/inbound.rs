//! The shapes an inbound email arrives in at `POST /webhooks/email`: raw MIME
//! (`message/rfc822`), the contract's own JSON, Postmark's inbound JSON, and the form posts of
//! SendGrid Inbound Parse and Mailgun routes. Each is turned into the same [`ParsedEmail`], so
//! threading and storage never depend on the provider.

use base64::Engine;
use serde_json::Value;

use super::form::{form_fields, parse_form};
use super::mime::{clean_id, mailbox_of, unique_ids};
use super::sanitize::html_to_text;
use super::{
    parse_mime, sanitize_html, Attachment, EmailError, Mailbox, ParsedEmail, MAX_EMAIL_BYTES,
};

/// Parses a stored inbound email by its content type (`message/rfc822` or JSON; a body that
/// starts like a header block is taken as raw MIME whatever its declared type).
pub fn parse_inbound(content_type: Option<&str>, body: &[u8]) -> Result<ParsedEmail, EmailError> {
    if body.len() > MAX_EMAIL_BYTES {
        return Err(EmailError::TooLarge {
            size: body.len(),
            max: MAX_EMAIL_BYTES,
        });
    }
    if let Some(fields) = content_type.and_then(|c| form_fields(c, body)) {
        return parse_form(&fields);
    }
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if media_type == "message/rfc822" || !looks_json {
        return parse_mime(body);
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| EmailError::Unparseable)?;
    if value.get("FromFull").is_some()
        || value.get("TextBody").is_some()
        || value.get("MessageID").is_some()
    {
        postmark(&value)
    } else {
        contract_json(&value)
    }
}

/// The `to` and `cc` fields of a JSON email (the contract's or Postmark's); serde skips every
/// other field, attachments included, without holding it.
#[derive(serde::Deserialize)]
struct JsonRecipients {
    to: Option<Value>,
    cc: Option<Value>,
    #[serde(rename = "To")]
    to_header: Option<Value>,
    #[serde(rename = "Cc")]
    cc_header: Option<Value>,
    #[serde(rename = "ToFull")]
    to_full: Option<Value>,
    #[serde(rename = "CcFull")]
    cc_full: Option<Value>,
}

/// The `to` and `cc` addresses of an inbound email, as cheaply as its shape allows: JSON is
/// read for those fields only (a JSON document held whole takes several times its size), the
/// other shapes are parsed by [`parse_inbound`]. Empty when nothing can be read.
pub fn recipients(content_type: Option<&str>, body: &[u8]) -> Vec<String> {
    let media_type = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let form = matches!(
        media_type.as_str(),
        "multipart/form-data" | "application/x-www-form-urlencoded"
    );
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if looks_json && !form && media_type != "message/rfc822" && body.len() <= MAX_EMAIL_BYTES {
        let Ok(fields) = serde_json::from_slice::<JsonRecipients>(body) else {
            return Vec::new();
        };
        return [
            fields.to,
            fields.cc,
            fields.to_header,
            fields.cc_header,
            fields.to_full,
            fields.cc_full,
        ]
        .iter()
        .flat_map(|field| mailboxes(field.as_ref()))
        .map(|mailbox| mailbox.address)
        .collect();
    }
    parse_inbound(content_type, body)
        .map(|email| {
            email
                .to
                .into_iter()
                .chain(email.cc)
                .map(|mailbox| mailbox.address)
                .collect()
        })
        .unwrap_or_default()
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Mailboxes of a field that is a string ("A <a@x>, b@y"), an array of such strings, or an
/// array of `{Email, Name}` objects (Postmark's `ToFull`).
fn mailboxes(value: Option<&Value>) -> Vec<Mailbox> {
    match value {
        Some(Value::String(list)) => split_addresses(list)
            .filter_map(|a| mailbox_of(&a))
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .flat_map(|item| match item {
                Value::String(list) => split_addresses(list)
                    .filter_map(|a| mailbox_of(&a))
                    .collect(),
                Value::Object(_) => {
                    let address = text(item, "Email")
                        .or_else(|| text(item, "email"))
                        .unwrap_or_default();
                    let name = text(item, "Name").or_else(|| text(item, "name"));
                    let formatted = match name {
                        Some(name) => format!("\"{}\" <{address}>", name.replace('"', "")),
                        None => address.to_owned(),
                    };
                    mailbox_of(&formatted).into_iter().collect()
                }
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Splits an address list on the commas that are outside quotes and angle brackets.
fn split_addresses(list: &str) -> impl Iterator<Item = String> + '_ {
    let mut parts = Vec::new();
    let (mut current, mut quoted, mut angled) = (String::new(), false, false);
    for c in list.chars() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angled = true,
            '>' if !quoted => angled = false,
            ',' | ';' if !quoted && !angled => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty())
}

/// Message ids of a header value (`<a@x> <b@y>`) or an array of ids.
fn message_ids(value: Option<&Value>) -> Vec<String> {
    let chunks: Vec<&str> = match value {
        Some(Value::String(ids)) => vec![ids],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    unique_ids(
        chunks
            .into_iter()
            .flat_map(|chunk| chunk.split(|c: char| c.is_whitespace() || c == ',')),
    )
}

fn bodies(text_body: Option<&str>, html_body: Option<&str>) -> (Option<String>, Option<String>) {
    let html = html_body
        .map(sanitize_html)
        .filter(|h| !h.trim().is_empty());
    let text = text_body
        .map(str::to_owned)
        .or_else(|| html.as_deref().map(html_to_text))
        .filter(|t| !t.trim().is_empty());
    (text, html)
}

/// Where an attachment's fields are in one provider's JSON.
struct AttachmentKeys<'a> {
    name: &'a str,
    content_type: &'a str,
    /// The keys the base64 content may be under, the first present one wins.
    content: &'a [&'a str],
}

/// Attachments given inline as base64 (`content_base64`; Postmark's `Content`, or `Data` as in
/// Postmark's own test payload); ones given only by URL are not fetched.
fn attachments(items: Option<&Value>, keys: AttachmentKeys<'_>) -> Vec<Attachment> {
    let AttachmentKeys {
        name: name_key,
        content_type: type_key,
        content: content_keys,
    } = keys;
    let Some(Value::Array(items)) = items else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(index, item)| {
            let data = base64::engine::general_purpose::STANDARD
                .decode(
                    content_keys
                        .iter()
                        .find_map(|key| text(item, key))?
                        .replace(['\n', '\r'], ""),
                )
                .ok()?;
            let content_type = text(item, type_key)
                .unwrap_or("application/octet-stream")
                .to_ascii_lowercase();
            let filename = text(item, name_key)
                .map(|name| {
                    name.rsplit(['/', '\\'])
                        .next()
                        .unwrap_or(name)
                        .chars()
                        .take(200)
                        .collect::<String>()
                })
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| format!("attachment-{}.bin", index + 1));
            Some(Attachment {
                filename,
                content_type,
                content_id: text(item, "ContentID").and_then(clean_id),
                inline: false,
                data,
            })
        })
        .collect()
}

/// `{from, to, cc, subject, text, html, message_id, in_reply_to, references, attachments}`.
fn contract_json(value: &Value) -> Result<ParsedEmail, EmailError> {
    let from = mailboxes(value.get("from"))
        .into_iter()
        .next()
        .ok_or(EmailError::NoSender)?;
    let (text_body, html) = bodies(text(value, "text"), text(value, "html"));
    Ok(ParsedEmail {
        message_id: text(value, "message_id").and_then(clean_id),
        in_reply_to: message_ids(value.get("in_reply_to")),
        references: message_ids(value.get("references")),
        from,
        reply_to: mailboxes(value.get("reply_to")).into_iter().next(),
        to: mailboxes(value.get("to")),
        cc: mailboxes(value.get("cc")),
        subject: text(value, "subject").map(str::to_owned),
        text: text_body,
        html,
        attachments: attachments(
            value.get("attachments"),
            AttachmentKeys {
                name: "filename",
                content_type: "content_type",
                content: &["content_base64"],
            },
        ),
        sent_at: None,
    })
}

/// Postmark's inbound webhook: `FromFull`, `ToFull`, `CcFull`, `Subject`, `TextBody`,
/// `HtmlBody`, `MessageID`, `Headers` (for `Message-ID`, `In-Reply-To`, `References`) and
/// `Attachments` with base64 `Content` (or `Data`).
fn postmark(value: &Value) -> Result<ParsedEmail, EmailError> {
    let header = |name: &str| {
        value
            .get("Headers")
            .and_then(Value::as_array)
            .and_then(|headers| {
                headers
                    .iter()
                    .find(|h| text(h, "Name").is_some_and(|n| n.eq_ignore_ascii_case(name)))
                    .and_then(|h| h.get("Value"))
                    .cloned()
            })
    };
    let from = mailboxes(
        value
            .get("FromFull")
            .map(|f| Value::Array(vec![f.clone()]))
            .as_ref(),
    )
    .into_iter()
    .next()
    .or_else(|| mailboxes(value.get("From")).into_iter().next())
    .ok_or(EmailError::NoSender)?;
    let (text_body, html) = bodies(text(value, "TextBody"), text(value, "HtmlBody"));
    let message_id = header("Message-ID")
        .as_ref()
        .and_then(Value::as_str)
        .and_then(clean_id)
        .or_else(|| text(value, "MessageID").and_then(clean_id));
    let to = match value.get("ToFull") {
        Some(full) => mailboxes(Some(full)),
        None => mailboxes(value.get("To")),
    };
    let cc = match value.get("CcFull") {
        Some(full) => mailboxes(Some(full)),
        None => mailboxes(value.get("Cc")),
    };
    Ok(ParsedEmail {
        message_id,
        in_reply_to: message_ids(header("In-Reply-To").as_ref()),
        references: message_ids(header("References").as_ref()),
        from,
        reply_to: mailboxes(value.get("ReplyTo")).into_iter().next(),
        to,
        cc,
        subject: text(value, "Subject").map(str::to_owned),
        text: text_body,
        html,
        attachments: attachments(
            value.get("Attachments"),
            AttachmentKeys {
                name: "Name",
                content_type: "ContentType",
                content: &["Content", "Data"],
            },
        ),
        sent_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_json_shape_is_read() {
        let body = serde_json::json!({
            "from": "Budi Santoso <Budi@Example.COM>",
            "to": ["support@shop.example", "other@x.example"],
            "subject": "Order 42",
            "text": "Where is my order?",
            "html": "<p>Where is <b>my</b> order?<script>alert(1)</script></p>",
            "message_id": "<m1@example.com>",
            "in_reply_to": "<m0@shop.example>",
            "references": "<r1@shop.example> <m0@shop.example>",
            "attachments": [{"filename": "../../invoice.pdf", "content_type": "application/pdf", "content_base64": "JVBERi0xLjQ="}]
        });
        let email = parse_inbound(Some("application/json"), body.to_string().as_bytes()).unwrap();
        assert_eq!(email.from.address, "budi@example.com");
        assert_eq!(email.from.name.as_deref(), Some("Budi Santoso"));
        assert_eq!(email.to.len(), 2);
        assert_eq!(email.message_id.as_deref(), Some("m1@example.com"));
        assert_eq!(email.in_reply_to, vec!["m0@shop.example"]);
        assert_eq!(email.references, vec!["r1@shop.example", "m0@shop.example"]);
        assert!(!email.html.as_deref().unwrap().contains("<script"));
        assert_eq!(email.attachments[0].filename, "invoice.pdf");
        assert_eq!(email.attachments[0].data, b"%PDF-1.4");
    }

    #[test]
    fn postmark_json_is_read_with_its_threading_headers() {
        let body = serde_json::json!({
            "FromFull": {"Email": "ana@example.org", "Name": "Ana"},
            "ToFull": [{"Email": "Support@Shop.example", "Name": ""}],
            "Subject": "Re: Order 42",
            "TextBody": "Thanks",
            "MessageID": "22c74902-a0c1-4511-804f2-341342852c90",
            "Headers": [{"Name": "Message-ID", "Value": "<abc@mail.example.org>"},
                        {"Name": "In-Reply-To", "Value": "<m0@shop.example>"}],
            "Attachments": []
        });
        let email = parse_inbound(Some("application/json"), body.to_string().as_bytes()).unwrap();
        assert_eq!(email.from.address, "ana@example.org");
        assert_eq!(email.to[0].address, "support@shop.example");
        assert_eq!(email.message_id.as_deref(), Some("abc@mail.example.org"));
        assert_eq!(email.in_reply_to, vec!["m0@shop.example"]);
        assert_eq!(email.text.as_deref(), Some("Thanks"));
    }

    #[test]
    fn postmark_attachments_are_read_from_content_or_data() {
        let body = serde_json::json!({
            "FromFull": {"Email": "ana@example.org", "Name": "Ana"},
            "ToFull": [{"Email": "support@shop.example"}],
            "TextBody": "Files",
            "Attachments": [
                {"Name": "a.pdf", "ContentType": "application/pdf", "Content": "JVBERi0xLjQ="},
                {"Name": "b.txt", "ContentType": "text/plain", "Data": "aGVsbG8="}
            ]
        });
        let email = parse_inbound(Some("application/json"), body.to_string().as_bytes()).unwrap();
        let files: Vec<(&str, &[u8])> = email
            .attachments
            .iter()
            .map(|a| (a.filename.as_str(), a.data.as_slice()))
            .collect();
        assert_eq!(
            files,
            vec![("a.pdf", &b"%PDF-1.4"[..]), ("b.txt", &b"hello"[..])]
        );
    }

    #[test]
    fn recipients_are_read_from_every_shape() {
        let contract = serde_json::json!({"from": "a@x.example", "to": ["Support@Shop.example"],
            "cc": "B <b@x.example>", "attachments": [{"content_base64": "AAAA"}]});
        assert_eq!(
            recipients(Some("application/json"), contract.to_string().as_bytes()),
            vec!["support@shop.example", "b@x.example"]
        );
        let postmark = serde_json::json!({"FromFull": {"Email": "a@x.example"},
            "ToFull": [{"Email": "support@shop.example", "Name": ""}], "To": "support@shop.example"});
        assert!(
            recipients(Some("application/json"), postmark.to_string().as_bytes())
                .iter()
                .all(|r| r == "support@shop.example")
        );
        let raw = b"From: a@example.com\r\nTo: support@shop.example\r\n\r\nHello\r\n";
        assert_eq!(
            recipients(Some("message/rfc822"), raw),
            vec!["support@shop.example"]
        );
        assert!(recipients(Some("application/json"), b"{not json").is_empty());
    }

    #[test]
    fn raw_mime_is_read_whatever_the_declared_type() {
        let raw = b"From: a@example.com\r\nTo: support@shop.example\r\nSubject: Hi\r\nMessage-ID: <x@y>\r\n\r\nHello\r\n";
        let email = parse_inbound(Some("text/plain"), raw).unwrap();
        assert_eq!(email.subject.as_deref(), Some("Hi"));
        assert_eq!(email.message_id.as_deref(), Some("x@y"));
    }

    #[test]
    fn json_without_a_sender_is_refused() {
        let body = serde_json::json!({"to": "support@shop.example", "text": "hi"});
        assert_eq!(
            parse_inbound(Some("application/json"), body.to_string().as_bytes()),
            Err(EmailError::NoSender)
        );
    }
}
