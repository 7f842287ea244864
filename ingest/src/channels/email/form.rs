//! Form posts of inbound-parse services: SendGrid Inbound Parse and Mailgun routes, sent as
//! `multipart/form-data` (or, without attachments, `application/x-www-form-urlencoded`).
//!
//! A multipart form is MIME, so it is read with the same parser as mail: its parts are named
//! by their `Content-Disposition`.

use hmac::{Hmac, Mac};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;
use sha2::Sha256;

use super::mime::{clean_id, mailbox_of, unique_ids};
use super::sanitize::{html_to_text, sanitize_html};
use super::{parse_mime, Attachment, EmailError, Mailbox, ParsedEmail};

/// One field of a form.
#[derive(Debug, Clone)]
pub struct FormField {
    pub name: String,
    /// Set for file fields.
    pub filename: Option<String>,
    pub content_type: String,
    pub data: Vec<u8>,
}

impl FormField {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The fields of a form post, or `None` when `content_type` is not a form.
pub fn form_fields(content_type: &str, body: &[u8]) -> Option<Vec<FormField>> {
    let media_type = content_type.split(';').next()?.trim().to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-www-form-urlencoded" => Some(
            form_urlencoded::parse(body)
                .map(|(name, value)| FormField {
                    name: name.into_owned(),
                    filename: None,
                    content_type: "text/plain".into(),
                    data: value.into_owned().into_bytes(),
                })
                .collect(),
        ),
        "multipart/form-data" => {
            let mut raw = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
            raw.extend_from_slice(body);
            let message = MessageParser::default().parse(&raw)?;
            Some(
                message
                    .parts
                    .iter()
                    .skip(1)
                    .filter_map(|part| {
                        let disposition = part.content_disposition()?;
                        let name = disposition.attribute("name")?.to_owned();
                        Some(FormField {
                            name,
                            filename: disposition.attribute("filename").map(str::to_owned),
                            content_type: part
                                .content_type()
                                .map(|ct| match ct.subtype() {
                                    Some(sub) => format!("{}/{sub}", ct.ctype()),
                                    None => ct.ctype().to_owned(),
                                })
                                .unwrap_or_else(|| "text/plain".into())
                                .to_ascii_lowercase(),
                            data: part.contents().to_vec(),
                        })
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

fn field<'a>(fields: &'a [FormField], name: &str) -> Option<&'a FormField> {
    fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

fn field_text(fields: &[FormField], name: &str) -> Option<String> {
    field(fields, name)
        .map(FormField::text)
        .filter(|t| !t.trim().is_empty())
}

/// Whether Mailgun's `signature` is the HMAC-SHA256 of `timestamp` + `token` under the webhook
/// signing key.
pub fn mailgun_signature_valid(signing_key: &str, fields: &[FormField]) -> bool {
    let (Some(timestamp), Some(token), Some(signature)) = (
        field_text(fields, "timestamp"),
        field_text(fields, "token"),
        field_text(fields, "signature"),
    ) else {
        return false;
    };
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes()) else {
        return false;
    };
    mac.update(timestamp.trim().as_bytes());
    mac.update(token.trim().as_bytes());
    mac.verify_slice(&expected).is_ok()
}

/// The file fields as attachments.
fn files(fields: &[FormField]) -> Vec<Attachment> {
    fields
        .iter()
        .filter(|f| f.filename.is_some())
        .map(|f| Attachment {
            filename: f
                .filename
                .as_deref()
                .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_owned())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "attachment.bin".into()),
            content_type: f.content_type.clone(),
            content_id: None,
            inline: false,
            data: f.data.clone(),
        })
        .collect()
}

fn addresses(list: Option<String>) -> Vec<Mailbox> {
    list.map(|l| l.split(',').filter_map(mailbox_of).collect())
        .unwrap_or_default()
}

fn ids(value: Option<String>) -> Vec<String> {
    unique_ids(value.as_deref().unwrap_or_default().split_whitespace())
}

/// A SendGrid or Mailgun form as a [`ParsedEmail`] (their raw-MIME variants, `email` and
/// `body-mime`, through the MIME parser).
pub fn parse_form(fields: &[FormField]) -> Result<ParsedEmail, EmailError> {
    if let Some(raw) = field(fields, "email").or_else(|| field(fields, "body-mime")) {
        return parse_mime(&raw.data);
    }
    let html = |name: &str| field_text(fields, name).map(|h| sanitize_html(&h));
    if let Some(headers) = field_text(fields, "headers") {
        // SendGrid: the raw header block carries the addresses and thread ids.
        let mut head = headers.into_bytes();
        head.extend_from_slice(b"\r\n\r\n");
        let mut email = parse_mime(&head)?;
        email.html = html("html").filter(|h| !h.trim().is_empty());
        email.text = field_text(fields, "text").or_else(|| email.html.as_deref().map(html_to_text));
        email.attachments = files(fields);
        return Ok(email);
    }
    // Mailgun: headers as a JSON list of [name, value] pairs, bodies as fields.
    let headers: Vec<(String, String)> = field_text(fields, "message-headers")
        .and_then(|h| serde_json::from_str::<Vec<(String, Value)>>(&h).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_str()?.to_owned())))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .or_else(|| field_text(fields, name))
    };
    let from = header("from")
        .or_else(|| field_text(fields, "sender"))
        .and_then(|f| mailbox_of(&f))
        .ok_or(EmailError::NoSender)?;
    let mut to = addresses(header("to"));
    if to.is_empty() {
        to = addresses(field_text(fields, "recipient"));
    }
    let html = html("body-html").filter(|h| !h.trim().is_empty());
    let text = field_text(fields, "body-plain").or_else(|| html.as_deref().map(html_to_text));
    Ok(ParsedEmail {
        message_id: header("message-id").as_deref().and_then(clean_id),
        in_reply_to: ids(header("in-reply-to")),
        references: ids(header("references")),
        from,
        reply_to: header("reply-to").and_then(|r| mailbox_of(&r)),
        to,
        cc: addresses(header("cc")),
        subject: header("subject").filter(|s| !s.trim().is_empty()),
        text,
        html,
        attachments: files(fields),
        sent_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multipart(fields: &[(&str, Option<&str>, &str)]) -> (String, Vec<u8>) {
        let boundary = "xYzZY";
        let mut body = String::new();
        for (name, filename, value) in fields {
            body.push_str(&format!("--{boundary}\r\n"));
            match filename {
                Some(file) => body.push_str(&format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/pdf\r\n\r\n"
                )),
                None => body.push_str(&format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")),
            }
            body.push_str(value);
            body.push_str("\r\n");
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        (
            format!("multipart/form-data; boundary={boundary}"),
            body.into_bytes(),
        )
    }

    #[test]
    fn a_sendgrid_inbound_parse_post_is_read() {
        let (content_type, body) = multipart(&[
            ("headers", None, "From: Dewi <dewi@example.id>\r\nTo: support@shop.example\r\nSubject: Size\r\nMessage-ID: <sg1@example.id>\r\nIn-Reply-To: <m0@shop.example>"),
            ("text", None, "Do you have size M?"),
            ("html", None, "<p>Do you have <b>size M</b>?</p><script>x()</script>"),
            ("attachment1", Some("photo.pdf"), "%PDF-1.4"),
        ]);
        let fields = form_fields(&content_type, &body).unwrap();
        let email = parse_form(&fields).unwrap();
        assert_eq!(email.from.address, "dewi@example.id");
        assert_eq!(email.to[0].address, "support@shop.example");
        assert_eq!(email.message_id.as_deref(), Some("sg1@example.id"));
        assert_eq!(email.in_reply_to, vec!["m0@shop.example"]);
        assert_eq!(email.text.as_deref(), Some("Do you have size M?"));
        assert!(!email.html.unwrap().contains("<script"));
        assert_eq!(email.attachments[0].filename, "photo.pdf");
        assert_eq!(email.attachments[0].data, b"%PDF-1.4");
    }

    #[test]
    fn a_mailgun_route_post_is_read_and_its_signature_checked() {
        let key = "key-mailgun-test";
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(b"1700000000abc123");
        let signature = hex::encode(mac.finalize().into_bytes());
        let headers = r#"[["From", "Eko <eko@example.com>"], ["To", "support@shop.example"], ["Subject", "Invoice"], ["Message-Id", "<mg1@example.com>"], ["References", "<a@x> <b@y>"]]"#;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("recipient", "support@shop.example")
            .append_pair("sender", "eko@example.com")
            .append_pair("body-plain", "Please send the invoice")
            .append_pair("message-headers", headers)
            .append_pair("timestamp", "1700000000")
            .append_pair("token", "abc123")
            .append_pair("signature", &signature)
            .finish();
        let fields = form_fields("application/x-www-form-urlencoded", body.as_bytes()).unwrap();
        assert!(mailgun_signature_valid(key, &fields));
        assert!(!mailgun_signature_valid("another-key", &fields));
        let email = parse_form(&fields).unwrap();
        assert_eq!(email.from.address, "eko@example.com");
        assert_eq!(email.from.name.as_deref(), Some("Eko"));
        assert_eq!(email.message_id.as_deref(), Some("mg1@example.com"));
        assert_eq!(email.references, vec!["a@x", "b@y"]);
        assert_eq!(email.subject.as_deref(), Some("Invoice"));
        assert_eq!(email.text.as_deref(), Some("Please send the invoice"));
    }
}
