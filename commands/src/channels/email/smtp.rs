//! The email channel's outbound adapter: replies go out over SMTP as multipart text + HTML,
//! with `Message-ID`, `In-Reply-To` and `References` set so that the customer's mail client
//! threads them under the message they answer.
//!
//! The SMTP server is the account's own (`smtp_host`, `smtp_port`, `smtp_username`,
//! `smtp_password`, `smtp_tls`: `"starttls"` (the default), `"tls"` (the default on port 465) or
//! `"none"`/`false` for a local relay) or, when the account names none, the platform's `SMTP_URL`
//! in lettre's form (`smtps://user:pass@host` for TLS, `smtp://user:pass@host:587?tls=required`
//! for STARTTLS, `smtp://host:25` for a plain local relay).
//!
//! An account's SMTP server is a connection a tenant aims, so it follows the rules of outgoing
//! webhooks: unless the operator sets `OUTGOING_WEBHOOKS_ALLOW_PRIVATE`, the host must resolve
//! only to public addresses (checked after DNS, and the connection is made to the checked
//! address) and the port must be one of [`SMTP_PORTS`]. A remote server's reply text never
//! reaches a message's `error_message` (it could be any service's banner): errors carry a fixed
//! text per failure class, and the detail is logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Map, Value};

use crate::channels::{config_text, OutboundAttachment};
use crate::webhooks::wire::{is_internal, resolve_host_allowed, UrlRefused};

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The SMTP ports an account may name unless `OUTGOING_WEBHOOKS_ALLOW_PRIVATE` is set.
pub const SMTP_PORTS: [u16; 4] = [25, 465, 587, 2525];

/// The port used when an account names none.
const DEFAULT_SMTP_PORT: u16 = 587;

/// Why an account's SMTP server may not be used (unless `OUTGOING_WEBHOOKS_ALLOW_PRIVATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmtpRefused {
    /// The port is not one of [`SMTP_PORTS`].
    #[error("the SMTP port must be 25, 465, 587 or 2525")]
    Port,
    /// The host is, or resolves to, an internal address.
    #[error("the SMTP host is a private, loopback, link-local or metadata address, which is not allowed")]
    Address,
}

impl SmtpRefused {
    /// The account config field at fault, as an API error names it.
    pub fn field(self) -> &'static str {
        match self {
            SmtpRefused::Port => "config.smtp_port",
            SmtpRefused::Address => "config.smtp_host",
        }
    }
}

/// The platform's SMTP settings, and one pooled transport per SMTP server in use, so
/// consecutive replies reuse open (and authenticated, TLS-established) connections.
#[derive(Clone, Default)]
pub struct SmtpMailer {
    /// `SMTP_URL`, used for accounts that name no server of their own.
    default_url: Option<String>,
    /// `OUTGOING_WEBHOOKS_ALLOW_PRIVATE`: accounts may name internal hosts and any port.
    allow_private: bool,
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

/// Why a send did not happen. Its text (`Display`) is fixed per class and safe to show; what
/// the SMTP server answered is kept apart, for logs only ([`MailError::detail`]).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The account or the platform names no usable SMTP server or addresses.
    #[error("{0}")]
    Configuration(String),
    /// The account's SMTP server is an address or port tenants may not aim at.
    #[error("{0}")]
    Refused(SmtpRefused),
    /// The server refused for good (5xx): retrying would not help.
    #[error("the SMTP server refused the message")]
    Permanent(String),
    /// A temporary refusal or a network failure: worth retrying.
    #[error("the SMTP server could not be reached or failed temporarily")]
    Transient(String),
}

impl MailError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, MailError::Transient(_))
    }

    /// What the server or the network said, for logs (never for API responses).
    pub fn detail(&self) -> String {
        match self {
            MailError::Permanent(detail) | MailError::Transient(detail) => detail.clone(),
            other => other.to_string(),
        }
    }
}

/// The port an account names (`smtp_port`, a number or a numeric string), or 587.
fn smtp_port(config: &Map<String, Value>) -> u16 {
    config
        .get("smtp_port")
        .and_then(|p| {
            p.as_u64()
                .or_else(|| p.as_str().and_then(|s| s.trim().parse().ok()))
        })
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(DEFAULT_SMTP_PORT)
}

/// The account's `smtp_host`, without the brackets of an IPv6 literal.
fn smtp_host(config: &Map<String, Value>) -> Option<String> {
    config_text(config, "smtp_host").map(|host| host.trim_matches(['[', ']']).to_owned())
}

/// The check that can be made when an account is saved, without DNS: the port is one of
/// [`SMTP_PORTS`] and the host is not an internal IP literal (both unless `allow_private`).
/// Sending checks again after DNS resolution, which is the check that counts.
pub fn check_account_server(
    config: &Map<String, Value>,
    allow_private: bool,
) -> Result<(), SmtpRefused> {
    if allow_private {
        return Ok(());
    }
    let Some(host) = smtp_host(config) else {
        return Ok(());
    };
    if !SMTP_PORTS.contains(&smtp_port(config)) {
        return Err(SmtpRefused::Port);
    }
    if host.parse().is_ok_and(is_internal) {
        return Err(SmtpRefused::Address);
    }
    Ok(())
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
    /// (`SMTP_URL`); `allow_private` is `OUTGOING_WEBHOOKS_ALLOW_PRIVATE`, which lets accounts
    /// name internal hosts and any port.
    pub fn new(default_url: Option<String>, allow_private: bool) -> Self {
        SmtpMailer {
            default_url,
            allow_private,
            transports: Arc::default(),
        }
    }

    /// The address to connect to for the account's own SMTP server (`None`: the account names
    /// none), resolved once and checked: the connection goes to this address, so a second DNS
    /// answer cannot point it elsewhere.
    async fn account_server(
        &self,
        config: &Map<String, Value>,
    ) -> Result<Option<SocketAddr>, MailError> {
        let Some(host) = smtp_host(config) else {
            return Ok(None);
        };
        check_account_server(config, self.allow_private).map_err(MailError::Refused)?;
        let addresses = resolve_host_allowed(&host, smtp_port(config), self.allow_private)
            .await
            .map_err(|refused| match refused {
                UrlRefused::PrivateAddress => MailError::Refused(SmtpRefused::Address),
                other => MailError::Transient(format!("{host}: {other}")),
            })?;
        Ok(addresses.first().copied())
    }

    /// The pooled transport for the account's SMTP settings and checked `server` address, built
    /// on first use. Keyed by every setting that shapes it, so an account whose settings (or
    /// whose host's address) change gets a new one.
    fn pooled_transport(
        &self,
        config: &Map<String, Value>,
        server: Option<SocketAddr>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let mut key = [
            "smtp_host",
            "smtp_port",
            "smtp_tls",
            "smtp_username",
            "smtp_password",
        ]
        .map(|field| config.get(field).map(Value::to_string).unwrap_or_default())
        .join("\u{0}");
        if let Some(server) = server {
            key.push_str(&format!("\u{0}{server}"));
        }
        let mut transports = self
            .transports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(transport) = transports.get(&key) {
            return Ok(transport.clone());
        }
        let transport = self.transport(config, server)?;
        transports.insert(key, transport.clone());
        Ok(transport)
    }

    /// Sends `email` through the SMTP server of the account whose decrypted `config` is given.
    pub async fn send(
        &self,
        config: &Map<String, Value>,
        email: &OutgoingEmail<'_>,
    ) -> Result<(), MailError> {
        let server = self.account_server(config).await?;
        let transport = self.pooled_transport(config, server)?;
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
        let mut message = builder.multipart(body).map_err(|error| {
            tracing::warn!(%error, "an email reply could not be composed");
            MailError::Configuration("the reply could not be composed".into())
        })?;
        message.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "no".to_owned(),
        ));
        Ok(message)
    }

    /// A transport to the account's server at the checked `server` address (TLS still checks
    /// the certificate against the host name), or to `SMTP_URL` when the account names none.
    fn transport(
        &self,
        config: &Map<String, Value>,
        server: Option<SocketAddr>,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let (Some(host), Some(server)) = (smtp_host(config), server) else {
            let url = self.default_url.as_deref().ok_or_else(|| {
                MailError::Configuration(
                    "the email account names no SMTP server and SMTP_URL is not set".into(),
                )
            })?;
            return AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|builder| builder.timeout(Some(SMTP_TIMEOUT)).build())
                .map_err(|error| {
                    tracing::error!(%error, "SMTP_URL is not a valid SMTP URL");
                    MailError::Configuration("SMTP_URL is not a valid SMTP URL".into())
                });
        };
        let port = server.port();
        let parameters = || {
            TlsParameters::new(host.clone()).map_err(|_| {
                MailError::Configuration("the SMTP host is not a valid TLS server name".into())
            })
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
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.ip().to_string())
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

    fn account(host: &str, port: u16) -> Map<String, Value> {
        serde_json::json!({"smtp_host": host, "smtp_port": port, "smtp_tls": "none"})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn tenants_may_name_only_smtp_ports_and_public_hosts_unless_private_is_allowed() {
        let check = check_account_server;
        assert_eq!(check(&account("smtp.example.com", 587), false), Ok(()));
        for port in SMTP_PORTS {
            assert_eq!(check(&account("smtp.example.com", port), false), Ok(()));
        }
        for port in [4222, 5432, 22, 6379] {
            assert_eq!(
                check(&account("smtp.example.com", port), false),
                Err(SmtpRefused::Port)
            );
        }
        for host in [
            "127.0.0.1",
            "10.0.0.5",
            "169.254.169.254",
            "[::1]",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(
                check(&account(host, 25), false),
                Err(SmtpRefused::Address),
                "{host}"
            );
        }
        assert_eq!(check(&account("127.0.0.1", 4222), true), Ok(()));
        assert_eq!(
            check(&Map::new(), false),
            Ok(()),
            "SMTP_URL is the operator's"
        );
    }

    #[tokio::test]
    async fn a_host_resolving_to_an_internal_address_is_refused_before_connecting() {
        let mailer = SmtpMailer::new(None, false);
        let refused = mailer.send(&account("localhost", 2525), &reply()).await;
        assert!(
            matches!(refused, Err(MailError::Refused(SmtpRefused::Address))),
            "{refused:?}"
        );
        let refused = mailer
            .send(&account("smtp.example.com", 4222), &reply())
            .await;
        assert!(
            matches!(refused, Err(MailError::Refused(SmtpRefused::Port))),
            "{refused:?}"
        );
    }

    /// A server that writes `greeting` to each connection and keeps it open a moment.
    async fn banner_server(greeting: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    let _ = socket.write_all(greeting.as_bytes()).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn a_servers_reply_text_never_reaches_the_error_text() {
        let mailer = SmtpMailer::new(None, true);
        let nats =
            banner_server("INFO {\"server_id\":\"NSECRETBANNER\",\"version\":\"2.10\"}\r\n").await;
        let failed = mailer.send(&account("127.0.0.1", nats), &reply()).await;
        let error = failed.unwrap_err();
        assert!(!error.to_string().contains("SECRETBANNER"), "{error}");
        assert!(error.detail().contains("SECRETBANNER") || error.is_retryable());
        let refusing = banner_server("554 5.7.1 internal-relay.corp SECRETBANNER\r\n").await;
        let failed = mailer.send(&account("127.0.0.1", refusing), &reply()).await;
        let error = failed.unwrap_err();
        assert!(matches!(error, MailError::Permanent(_)), "{error:?}");
        assert_eq!(error.to_string(), "the SMTP server refused the message");
        assert!(
            error.detail().contains("SECRETBANNER"),
            "{}",
            error.detail()
        );
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
            mailer.transport(&Map::new(), None),
            Err(MailError::Configuration(_))
        ));
    }
}
