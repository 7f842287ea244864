//! The email channel's outbound adapter: replies go out over SMTP as multipart text + HTML,
//! with `Message-ID`, `In-Reply-To` and `References` set so that the customer's mail client
//! threads them under the message they answer.
//!
//! The SMTP server is the account's own (`smtp_host`, `smtp_port`, `smtp_username`,
//! `smtp_password`, `smtp_tls`: `"starttls"` (the default), `"tls"` (the default on port 465) or
//! `"none"`/`false` for a local relay) or, when the account names none, the platform's `SMTP_URL`
//! in lettre's form (`smtps://user:pass@host` for TLS, `smtp://user:pass@host:587?tls=required`
//! for STARTTLS, `smtp://host:25` for a plain local relay).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Map, Value};

use crate::channels::{config_text, OutboundAttachment};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The platform's SMTP settings, and one pooled transport per SMTP server in use, so
/// consecutive replies reuse open (and authenticated, TLS-established) connections.
#[derive(Clone, Default)]
pub struct SmtpMailer {
    /// `SMTP_URL`, used for accounts that name no server of their own.
    default_url: Option<String>,
    transports: Arc<Mutex<HashMap<String, AsyncSmtpTransport<Tokio1Executor>>>>,
}

/// One reply to send.
#[derive(Debug, Clone)]
pub struct OutgoingEmail<'a> {
    pub from_address: String,
    pub from_name: Option<String>,
    pub to_address: String,
    pub to_name: Option<String>,
    pub subject: String,
    pub text: String,
    /// Our `Message-ID`, without angle brackets.
    pub message_id: String,
    /// The message answered, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The thread so far, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// Where the customer's answer should go: the conversation's token address.
    pub reply_to: Option<String>,
    /// Files sent along (the message becomes `multipart/mixed`), borrowed from the delivery:
    /// up to 25 MiB each, so they are not copied for the message.
    pub attachments: &'a [OutboundAttachment],
}

/// Why a send did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The account or the platform names no usable SMTP server or addresses.
    #[error("{0}")]
    Configuration(String),
    /// The server refused for good (5xx): retrying would not help.
    #[error("the SMTP server refused the message: {0}")]
    Permanent(String),
    /// A temporary refusal or a network failure: worth retrying.
    #[error("SMTP failed: {0}")]
    Transient(String),
}

impl MailError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MailError::Transient(_))
    }
}

/// The body as HTML: the text escaped, its lines kept.
fn text_as_html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!("<div>{}</div>", escaped.replace('\n', "<br>\n"))
}

impl SmtpMailer {
    /// A mailer whose accounts without an SMTP server of their own use `default_url`
    /// (`SMTP_URL`).
    pub fn new(default_url: Option<String>) -> Self {
        SmtpMailer {
            default_url,
            transports: Arc::default(),
        }
    }

    /// The pooled transport for the account's SMTP settings, built on first use. Keyed by every
    /// setting that shapes it, so an account whose settings change gets a new one.
    fn pooled_transport(
        &self,
        config: &Map<String, Value>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let key = [
            "smtp_host",
            "smtp_port",
            "smtp_tls",
            "smtp_username",
            "smtp_password",
        ]
        .map(|field| config.get(field).map(Value::to_string).unwrap_or_default())
        .join("\u{0}");
        let mut transports = self
            .transports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(transport) = transports.get(&key) {
            return Ok(transport.clone());
        }
        let transport = self.transport(config)?;
        transports.insert(key, transport.clone());
        Ok(transport)
    }

    /// Sends `email` through the SMTP server of the account whose decrypted `config` is given.
    pub async fn send(
        &self,
        config: &Map<String, Value>,
        email: &OutgoingEmail<'_>,
    ) -> Result<(), MailError> {
        let transport = self.pooled_transport(config)?;
        let message = Self::message(email)?;
        match transport.send(message).await {
            Ok(_) => Ok(()),
            Err(error) if error.is_permanent() => Err(MailError::Permanent(error.to_string())),
            Err(error) => Err(MailError::Transient(error.to_string())),
        }
    }

    fn message(email: &OutgoingEmail<'_>) -> Result<Message, MailError> {
        let mailbox = |name: &Option<String>, address: &str| {
            let address = address.parse().map_err(|_| {
                MailError::Configuration(format!("`{address}` is not an email address"))
            })?;
            Ok::<_, MailError>(Mailbox::new(name.clone(), address))
        };
        let mut builder = Message::builder()
            .from(mailbox(&email.from_name, &email.from_address)?)
            .to(mailbox(&email.to_name, &email.to_address)?)
            .subject(email.subject.clone())
            .message_id(Some(format!("<{}>", email.message_id)));
        if let Some(answered) = &email.in_reply_to {
            builder = builder.in_reply_to(format!("<{answered}>"));
        }
        if !email.references.is_empty() {
            let references = email
                .references
                .iter()
                .map(|id| format!("<{id}>"))
                .collect::<Vec<_>>()
                .join(" ");
            builder = builder.references(references);
        }
        if let Some(reply_to) = &email.reply_to {
            builder = builder.reply_to(mailbox(&email.from_name, reply_to)?);
        }
        let bodies =
            MultiPart::alternative_plain_html(email.text.clone(), text_as_html(&email.text));
        let body = match email.attachments {
            [] => bodies,
            files => files
                .iter()
                .fold(MultiPart::mixed().multipart(bodies), |mixed, file| {
                    let kind = ContentType::parse(&file.mime_type)
                        .or_else(|_| ContentType::parse("application/octet-stream"))
                        .unwrap_or(ContentType::TEXT_PLAIN);
                    // Always base64: a file that happens to be ASCII could otherwise go as
                    // 7bit, and relays may rewrite its line endings.
                    let bytes = Body::new_with_encoding(
                        file.bytes.clone(),
                        ContentTransferEncoding::Base64,
                    )
                    .unwrap_or_else(Body::new);
                    mixed.singlepart(Attachment::new(file.filename.clone()).body(bytes, kind))
                }),
        };
        let mut message = builder
            .multipart(body)
            .map_err(|error| MailError::Configuration(error.to_string()))?;
        message.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "no".to_owned(),
        ));
        Ok(message)
    }

    fn transport(
        &self,
        config: &Map<String, Value>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let Some(host) = config_text(config, "smtp_host") else {
            let url = self.default_url.as_deref().ok_or_else(|| {
                MailError::Configuration(
                    "the email account names no SMTP server and SMTP_URL is not set".into(),
                )
            })?;
            return AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|builder| builder.timeout(Some(SMTP_TIMEOUT)).build())
                .map_err(|error| MailError::Configuration(format!("SMTP_URL: {error}")));
        };
        let port = config
            .get("smtp_port")
            .and_then(|p| {
                p.as_u64()
                    .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
            })
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(587);
        let parameters = || {
            TlsParameters::new(host.clone()).map_err(|e| MailError::Configuration(e.to_string()))
        };
        let tls = match config.get("smtp_tls") {
            Some(Value::Bool(false)) => Tls::None,
            Some(Value::String(mode)) if mode.eq_ignore_ascii_case("none") => Tls::None,
            Some(Value::String(mode)) if mode.eq_ignore_ascii_case("tls") => {
                Tls::Wrapper(parameters()?)
            }
            _ if port == 465 => Tls::Wrapper(parameters()?),
            _ => Tls::Required(parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host)
            .port(port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let (Some(user), Some(password)) = (
            config_text(config, "smtp_username"),
            config_text(config, "smtp_password"),
        ) {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> OutgoingEmail<'static> {
        OutgoingEmail {
            from_address: "support@shop.example".into(),
            from_name: Some("Shop".into()),
            to_address: "budi@example.com".into(),
            to_name: Some("Budi".into()),
            subject: "Re: Order 42".into(),
            text: "It ships <today>.\nRegards".into(),
            message_id: "0001@shop.example".into(),
            in_reply_to: Some("m2@example.com".into()),
            references: vec!["m1@example.com".into(), "m2@example.com".into()],
            reply_to: None,
            attachments: &[],
        }
    }

    #[test]
    fn a_reply_carries_the_threading_headers_and_both_bodies() {
        let formatted =
            String::from_utf8(SmtpMailer::message(&reply()).unwrap().formatted()).unwrap();
        assert!(
            formatted.contains("Message-ID: <0001@shop.example>"),
            "{formatted}"
        );
        assert!(
            formatted.contains("In-Reply-To: <m2@example.com>"),
            "{formatted}"
        );
        assert!(
            formatted.contains("References: <m1@example.com> <m2@example.com>"),
            "{formatted}"
        );
        assert!(formatted.contains("multipart/alternative"));
        assert!(formatted.contains("text/plain") && formatted.contains("text/html"));
        assert!(
            formatted.contains("&lt;today&gt;"),
            "the HTML part escapes the text"
        );
    }

    #[test]
    fn attachments_make_a_mixed_message_and_reply_to_names_the_token_address() {
        let mut email = reply();
        email.reply_to = Some("support+abc@shop.example".into());
        let invoice = [OutboundAttachment {
            filename: "invoice.pdf".into(),
            mime_type: "application/pdf".into(),
            bytes: b"%PDF-1.4 test".to_vec(),
        }];
        email.attachments = &invoice;
        let formatted =
            String::from_utf8(SmtpMailer::message(&email).unwrap().formatted()).unwrap();
        assert!(formatted.contains("multipart/mixed"), "{formatted}");
        assert!(formatted.contains("multipart/alternative"), "{formatted}");
        assert!(
            formatted.contains("Content-Type: application/pdf"),
            "{formatted}"
        );
        assert!(
            formatted.contains("filename=\"invoice.pdf\""),
            "{formatted}"
        );
        assert!(
            formatted.contains("JVBERi0xLjQgdGVzdA=="),
            "the bytes, base64: {formatted}"
        );
        assert!(
            formatted.contains("Reply-To: \"Shop\" <support+abc@shop.example>")
                || formatted.contains("Reply-To: Shop <support+abc@shop.example>"),
            "{formatted}"
        );
        assert!(!SmtpMailer::message(&reply())
            .unwrap()
            .formatted()
            .windows(15)
            .any(|w| w == b"multipart/mixed"));
    }

    #[test]
    fn a_bad_address_or_a_missing_server_is_a_configuration_error() {
        let mut bad = reply();
        bad.to_address = "not an address".into();
        assert!(matches!(
            SmtpMailer::message(&bad),
            Err(MailError::Configuration(_))
        ));
        let mailer = SmtpMailer::default();
        assert!(matches!(
            mailer.transport(&Map::new()),
            Err(MailError::Configuration(_))
        ));
    }
}
