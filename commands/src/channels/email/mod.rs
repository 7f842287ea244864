//! The email channel: SMTP sending ([`smtp`]), the signed reply addresses that lead a reply back
//! to its conversation ([`reply_address`]), and the adapter that mails replies threaded under the
//! conversation's latest inbound email.

pub mod reply_address;
pub mod smtp;

use async_trait::async_trait;
use omnistream_domain::{Channel, TenantId};
use serde_json::{Map, Value};

use super::{config_text, ChannelAdapter, OutboundDelivery, SendOutcome};
use reply_address::ReplyTokens;
use smtp::{OutgoingEmail, SmtpMailer};

/// Sends through the account's SMTP server (or `SMTP_URL`).
#[derive(Clone, Default)]
pub struct EmailAdapter {
    pub mailer: SmtpMailer,
    /// Signs the conversation's `Reply-To` token address; `None`: replies carry no Reply-To.
    pub reply_tokens: Option<ReplyTokens>,
}

/// The body of a reply: its text, with a link to media that is not ours (stored media goes as
/// an attachment instead).
fn body_text(delivery: &OutboundDelivery) -> String {
    let text = delivery.content.clone().unwrap_or_default();
    match (&delivery.attachment, &delivery.media_url) {
        (None, Some(url)) => {
            let label = delivery.filename.as_deref().unwrap_or("Attachment");
            if text.is_empty() {
                format!("{label}: {url}")
            } else {
                format!("{text}\n\n{label}: {url}")
            }
        }
        _ => text,
    }
}

#[async_trait]
impl ChannelAdapter for EmailAdapter {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, config: &Map<String, Value>, delivery: &OutboundDelivery) -> SendOutcome {
        if !matches!(
            delivery.message_type.as_str(),
            "text" | "image" | "video" | "audio" | "document"
        ) {
            return SendOutcome::failed(format!(
                "{} messages cannot be sent by email",
                delivery.message_type
            ));
        }
        let text = |key: &str| config_text(config, key);
        let Some(from_address) = text("from_address").or_else(|| delivery.account_key.clone())
        else {
            return SendOutcome::failed("the email account has no from_address");
        };
        let Some(to_address) = delivery.contact_email.clone() else {
            return SendOutcome::failed("the contact has no email address");
        };
        let last = delivery.last_email.as_ref();
        let last_text = |key: &str| last.and_then(|l| l.get(key)).and_then(Value::as_str);
        let subject = match (&delivery.subject, last_text("subject")) {
            (Some(own), _) => own.clone(),
            (None, Some(subject)) if subject.to_lowercase().starts_with("re:") => {
                subject.to_owned()
            }
            (None, Some(subject)) => format!("Re: {subject}"),
            (None, None) => "(no subject)".to_owned(),
        };
        let in_reply_to = last_text("message_id").map(str::to_owned);
        let mut references: Vec<String> = last
            .and_then(|l| l.get("references"))
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(answered) = &in_reply_to {
            if !references.contains(answered) {
                references.push(answered.clone());
            }
        }
        let domain = from_address
            .rsplit('@')
            .next()
            .unwrap_or("omnistream.local");
        let our_id = format!("{}@{domain}", delivery.message_id.simple());
        let email = OutgoingEmail {
            from_address,
            from_name: text("from_name"),
            to_address,
            to_name: delivery.contact_name.clone().filter(|n| !n.is_empty()),
            subject,
            text: body_text(delivery),
            message_id: our_id.clone(),
            in_reply_to,
            references,
            reply_to: self.reply_tokens.as_ref().and_then(|tokens| {
                tokens.reply_address(
                    delivery.account_key.as_deref()?,
                    TenantId(delivery.tenant_id),
                    delivery.conversation_id,
                )
            }),
            attachments: delivery.attachment.as_slice(),
        };
        let sent = self.mailer.send(config, &email).await;
        if let Err(error) = &sent {
            // The detail may be the remote server's reply (any service's banner): logs only.
            tracing::warn!(
                message_id = %delivery.message_id,
                tenant_id = %delivery.tenant_id,
                detail = %error.detail(),
                "an email reply was not sent: {error}"
            );
        }
        match sent {
            Ok(()) => SendOutcome::Sent(our_id),
            Err(error) if error.is_retryable() => SendOutcome::Retry {
                error: error.to_string(),
                after: None,
            },
            Err(error) => SendOutcome::failed(error.to_string()),
        }
    }
}
