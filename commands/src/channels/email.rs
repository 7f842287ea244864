//! Email replies over SMTP, threaded under the conversation's latest inbound email.

use async_trait::async_trait;
use omnistream_domain::Channel;
use serde_json::{Map, Value};

use super::{config_text, ChannelAdapter, OutboundDelivery, SendOutcome};
use crate::email::{OutgoingEmail, SmtpMailer};

/// Sends through the account's SMTP server (or `SMTP_URL`).
#[derive(Clone, Default)]
pub struct EmailAdapter {
    pub mailer: SmtpMailer,
}

#[async_trait]
impl ChannelAdapter for EmailAdapter {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    async fn send(&self, config: &Map<String, Value>, delivery: &OutboundDelivery) -> SendOutcome {
        if delivery.message_type != "text" {
            return SendOutcome::failed("only text replies are sent by email yet");
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
            from_address: from_address.clone(),
            from_name: text("from_name"),
            to_address,
            to_name: delivery.contact_name.clone().filter(|n| !n.is_empty()),
            subject,
            text: delivery.content.clone().unwrap_or_default(),
            message_id: our_id.clone(),
            in_reply_to,
            references,
        };
        match self.mailer.send(config, &email).await {
            Ok(()) => SendOutcome::Sent(our_id),
            Err(error) if error.is_retryable() => SendOutcome::Retry {
                error: error.to_string(),
                after: None,
            },
            Err(error) => SendOutcome::failed(error.to_string()),
        }
    }
}
