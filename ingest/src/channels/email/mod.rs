//! Inbound email: turns a raw RFC 5322 / MIME message (`message/rfc822`) into a [`ParsedEmail`]
//! whose addresses are normalised, whose HTML is already sanitised and whose attachments are
//! decoded and named.
//!
//! The bytes come from outside (a mail provider's webhook or an MTA), so nothing here trusts
//! them: oversized input is refused before parsing, a message without a usable sender is an
//! error rather than a half-filled value, and HTML leaves this module only through the allow-list
//! in [`sanitize_html`], so that whatever stores or renders [`ParsedEmail::html`] can treat it as
//! safe markup.
//!
//! [`EmailChannel`] then records the parsed message (`handle.rs`): routing to the account it is
//! addressed to, threading, and its attachments in the media store.

mod form;
mod handle;
mod inbound;
mod mime;
mod sanitize;

#[cfg(test)]
mod tests;

pub use form::{form_fields, mailgun_signature_valid, parse_form, FormField};
pub use inbound::{parse_inbound, recipients};
pub use mime::parse_mime;
pub use sanitize::sanitize_html;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::channels::{Disposition, InboundChannel, StoredPayload};
use crate::InboundProcessor;

/// The provider the email receiver stores its payloads under in the raw inbound log.
pub const PROVIDER: &str = "email";

/// Inbound email, in any of the shapes `POST /webhooks/email` accepts.
pub struct EmailChannel;

impl InboundChannel for EmailChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    fn accepts(&self, payload: &StoredPayload) -> bool {
        payload.provider == PROVIDER
    }

    /// One key for all email: emails keep their arrival order, so a reply never overtakes what
    /// it answers.
    fn ordering_key(&self, _payload: &StoredPayload) -> String {
        PROVIDER.to_owned()
    }

    fn handle<'a>(
        &'a self,
        processor: &'a InboundProcessor,
        payload: StoredPayload,
    ) -> BoxFuture<'a, anyhow::Result<Disposition>> {
        Box::pin(handle::handle(processor, payload))
    }
}

/// Largest inbound email, as posted and as parsed: a 25 MiB attachment (the media limit)
/// base64-encoded, with the rest of the message. `POST /webhooks/email` accepts no more, so
/// every acknowledged email can be parsed.
pub const MAX_EMAIL_BYTES: usize = 40 * 1024 * 1024;

/// Why a raw message could not be turned into a [`ParsedEmail`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    /// The input is not a message at all (no header block could be read).
    #[error("the input is not a parseable email message")]
    Unparseable,
    /// The message has no `From` mailbox that could be replied to.
    #[error("the email has no usable From address")]
    NoSender,
    /// The raw message is larger than [`MAX_EMAIL_BYTES`].
    #[error("the email is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Size of the raw input in bytes.
        size: usize,
        /// The limit, [`MAX_EMAIL_BYTES`].
        max: usize,
    },
}

/// An inbound email, decoded and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEmail {
    /// `Message-ID`, without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To` ids in header order, without angle brackets.
    pub in_reply_to: Vec<String>,
    /// `References` ids in header order (oldest first), without angle brackets or duplicates.
    pub references: Vec<String>,
    /// The first usable `From` mailbox.
    pub from: Mailbox,
    /// The first usable `Reply-To` mailbox, where replies should go instead of `from`.
    pub reply_to: Option<Mailbox>,
    /// Usable `To` mailboxes (group members included).
    pub to: Vec<Mailbox>,
    /// Usable `Cc` mailboxes (group members included).
    pub cc: Vec<Mailbox>,
    /// Decoded subject (encoded words resolved), trimmed; `None` when missing or blank.
    pub subject: Option<String>,
    /// The plain-text body; derived from the HTML body when the message has no text part.
    pub text: Option<String>,
    /// The HTML body, already passed through [`sanitize_html`].
    pub html: Option<String>,
    /// Attachments and inline parts (images referenced by `cid:`, forwarded messages, …).
    pub attachments: Vec<Attachment>,
    /// The `Date` header in UTC, when present and valid.
    pub sent_at: Option<DateTime<Utc>>,
}

/// One email address with its optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The address, trimmed and lowercased; never empty and always of the form `local@domain`.
    pub address: String,
    /// The display name, decoded and trimmed; `None` when missing or blank.
    pub name: Option<String>,
}

/// A decoded attachment or inline part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The sender's file name reduced to its last path component, or a generated one such as
    /// `attachment-2.pdf` (or `forwarded.eml` for a forwarded message).
    pub filename: String,
    /// `type/subtype`, lowercased, without parameters.
    pub content_type: String,
    /// `Content-ID` without angle brackets: what `cid:` URLs in the HTML refer to.
    pub content_id: Option<String>,
    /// Whether the part is meant to be shown inside the body rather than offered as a download.
    pub inline: bool,
    /// The decoded content (transfer encoding removed). Text parts are re-encoded as UTF-8;
    /// a forwarded message is its raw RFC 5322 bytes.
    pub data: Vec<u8>,
}
