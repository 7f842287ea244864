//! MIME decoding on top of `mail-parser`: picks the body parts, normalises addresses and ids, and
//! names the attachments.

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};

use chrono::DateTime;
use mail_parser::{
    Addr, Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use super::sanitize::{html_to_text, sanitize_html};
use super::{Attachment, EmailError, Mailbox, ParsedEmail, MAX_EMAIL_BYTES};

/// Longest file name kept from the sender's headers, in characters.
const MAX_FILENAME_CHARS: usize = 200;

/// Parses a raw RFC 5322 / MIME message (`message/rfc822`).
///
/// Transfer encodings (base64, quoted-printable) and charsets are decoded, encoded words in
/// headers resolved, the HTML body sanitised with [`sanitize_html`] and, when the message has no
/// text part, the text body derived from the HTML. Nested `message/rfc822` parts are kept whole as
/// attachments rather than merged into the body. Should the MIME parser fail on the body
/// structure, the outer headers are still returned, with no body and no attachments.
///
/// # Errors
///
/// [`EmailError::TooLarge`] for input over [`MAX_EMAIL_BYTES`] (checked before any parsing),
/// [`EmailError::Unparseable`] when no header block can be read, and [`EmailError::NoSender`]
/// when no `From` mailbox has a usable address.
pub fn parse_mime(raw: &[u8]) -> Result<ParsedEmail, EmailError> {
    if raw.len() > MAX_EMAIL_BYTES {
        return Err(EmailError::TooLarge {
            size: raw.len(),
            max: MAX_EMAIL_BYTES,
        });
    }
    let message = parse_contained(raw).ok_or(EmailError::Unparseable)?;

    let from = message
        .from()
        .and_then(|address| mailboxes(address).next())
        .ok_or(EmailError::NoSender)?;
    let (text, html) = bodies(&message);

    Ok(ParsedEmail {
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from,
        reply_to: message.reply_to().and_then(|a| mailboxes(a).next()),
        to: message.all_to().flat_map(mailboxes).collect(),
        cc: message.all_cc().flat_map(mailboxes).collect(),
        subject: message.subject().and_then(non_blank),
        text,
        html,
        attachments: attachments(&message),
        sent_at: message
            .date()
            .filter(|date| date.is_valid())
            .and_then(|date| DateTime::from_timestamp(date.to_timestamp(), 0)),
    })
}

/// Runs mail-parser, falling back to the header block alone when the full parse cannot be
/// trusted.
///
/// mail-parser is written never to panic, but it checks its own invariants with
/// `debug_assert!`, and some malformed nestings of `message/rfc822` inside multiparts reach them
/// (release builds carry on); other such nestings make it return a nested message in place of
/// the outer one, which would hand us the forwarded sender as `From`. A message whose root part
/// does not start at the first byte is such a mix-up. In both cases only the outer header block
/// is kept, parsed on its own: sender, recipients, subject and thread ids survive, the body and
/// attachments are dropped (whoever stored the raw bytes can parse them again once the parser
/// copes). A panic must not escape, or the stored payload would fail on every retry; the
/// closures only read `raw`, so nothing is left half-updated when one unwinds.
fn parse_contained(raw: &[u8]) -> Option<Message<'_>> {
    let parser = MessageParser::default();
    let failure = match panic::catch_unwind(AssertUnwindSafe(|| parser.parse(raw))) {
        Ok(None) => return None,
        Ok(Some(message))
            if message
                .parts
                .first()
                .is_some_and(|root| root.offset_header == 0) =>
        {
            return Some(message)
        }
        Ok(Some(_)) => "returned a nested part as the message",
        Err(_) => "panicked",
    };
    tracing::error!(
        bytes = raw.len(),
        failure,
        "mail-parser failed on an inbound email; keeping its headers only"
    );
    panic::catch_unwind(AssertUnwindSafe(|| parser.parse_headers(raw)))
        .ok()
        .flatten()
}

/// The usable mailboxes of an address header, group members included, in header order.
fn mailboxes<'a>(address: &'a Address<'_>) -> impl Iterator<Item = Mailbox> + 'a {
    address.iter().filter_map(mailbox)
}

fn mailbox(addr: &Addr<'_>) -> Option<Mailbox> {
    usable_mailbox(addr.address()?, addr.name())
}

/// A mailbox from its address and display name, when the address is usable (`local@domain`,
/// no whitespace or control characters); the address is trimmed and lowercased.
fn usable_mailbox(address: &str, name: Option<&str>) -> Option<Mailbox> {
    let address = address.trim().to_lowercase();
    let (local, domain) = address.split_once('@')?;
    let usable = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    usable.then(|| Mailbox {
        name: name.and_then(non_blank),
        address,
    })
}

/// One mailbox written as in a header (`Name <local@domain>`, `"Name" <…>` or a bare address),
/// as providers' JSON gives them.
pub(crate) fn mailbox_of(written: &str) -> Option<Mailbox> {
    let written = written.trim();
    match (written.rfind('<'), written.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            let name = written[..open].trim().trim_matches('"').trim();
            usable_mailbox(&written[open + 1..close], Some(name))
        }
        _ => usable_mailbox(written, None),
    }
}

fn non_blank(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// A message id without its angle brackets; `None` when nothing is left.
pub(crate) fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty() && !id.chars().any(|c| c.is_whitespace() || c.is_control()))
        .then(|| id.to_owned())
}

/// The ids of an `In-Reply-To` or `References` header, in order, each once.
fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    unique_ids(
        value
            .as_text_list()
            .unwrap_or_default()
            .iter()
            .map(AsRef::as_ref),
    )
}

/// Message ids passed through [`clean_id`], in order, each once (a hostile `References` may
/// hold many thousands, so repeats are found by hashing, not by scanning).
pub(crate) fn unique_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = HashSet::new();
    ids.into_iter()
        .filter_map(clean_id)
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// The text and (sanitised) HTML bodies. Several body parts of one kind, as in a
/// `multipart/mixed` with text between attachments, are joined in order.
///
/// mail-parser also lists a text part among the HTML bodies (and the other way round) when the
/// other kind is missing; only parts that really are of the kind count here, so a plain-text
/// mail has no HTML and an HTML-only mail gets its text derived from the HTML.
fn bodies(message: &Message<'_>) -> (Option<String>, Option<String>) {
    let joined = |ids: &[u32], want_html: bool| {
        let parts: Vec<&str> = ids
            .iter()
            .filter_map(|&id| message.part(id))
            .filter_map(|part| match (&part.body, want_html) {
                (PartType::Text(text), false) | (PartType::Html(text), true) => Some(text.as_ref()),
                _ => None,
            })
            .filter(|body| !body.trim().is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n"))
    };
    let html = joined(&message.html_body, true)
        .map(|html| sanitize_html(&html))
        .filter(|html| !html.trim().is_empty());
    let text = joined(&message.text_body, false)
        .or_else(|| joined(&message.html_body, true).map(|html| html_to_text(&html)))
        .filter(|text| !text.is_empty());
    (text, html)
}

fn attachments(message: &Message<'_>) -> Vec<Attachment> {
    message
        .attachments
        .iter()
        .filter_map(|&id| message.part(id))
        .filter(|part| !matches!(part.body, PartType::Multipart(_)))
        .enumerate()
        .map(|(index, part)| attachment(index + 1, part))
        .collect()
}

fn attachment(number: usize, part: &MessagePart<'_>) -> Attachment {
    let content_type = content_type(part);
    let filename = part
        .attachment_name()
        .and_then(clean_filename)
        .unwrap_or_else(|| generated_filename(number, &content_type));
    let content_id = part.content_id().and_then(clean_id);
    let inline = match part.content_disposition() {
        Some(disposition) => disposition.is_inline(),
        None => content_id.is_some(),
    };
    Attachment {
        filename,
        content_id,
        inline,
        data: part.contents().to_vec(),
        content_type,
    }
}

/// `type/subtype` from the part's header, or what mail-parser made of a part without one.
fn content_type(part: &MessagePart<'_>) -> String {
    let token = |s: &str| {
        let s = s.trim().to_ascii_lowercase();
        let valid = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
        valid.then_some(s)
    };
    let declared = part
        .content_type()
        .and_then(|ct| Some(format!("{}/{}", token(ct.ctype())?, token(ct.subtype()?)?)));
    declared.unwrap_or_else(|| {
        match part.body {
            PartType::Text(_) => "text/plain",
            PartType::Html(_) => "text/html",
            PartType::Message(_) => "message/rfc822",
            PartType::Binary(_) | PartType::InlineBinary(_) | PartType::Multipart(_) => {
                "application/octet-stream"
            }
        }
        .to_owned()
    })
}

/// The sender's file name reduced to something safe to show and to store: its last path
/// component, without control characters, at most [`MAX_FILENAME_CHARS`] long.
fn clean_filename(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FILENAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    (!cleaned.is_empty() && cleaned != "." && cleaned != "..").then(|| cleaned.to_owned())
}

/// `attachment-N.ext`, with the extension taken from the content type when it is a plain word
/// (`image/png` → `png`), else `bin`; a forwarded message is `forwarded.eml`.
fn generated_filename(number: usize, content_type: &str) -> String {
    if content_type == "message/rfc822" || content_type == "message/global" {
        return "forwarded.eml".to_owned();
    }
    let subtype = content_type
        .split_once('/')
        .map_or("", |(_, subtype)| subtype);
    let extension = match subtype {
        "jpeg" | "pjpeg" => "jpg",
        "plain" => "txt",
        "svg+xml" => "svg",
        s if !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_alphanumeric()) => s,
        _ => "bin",
    };
    format!("attachment-{number}.{extension}")
}
