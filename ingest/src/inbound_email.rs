//! Inbound email into conversations: the account it is addressed to, the sender's contact, the
//! thread's conversation, and the message with its subject, sanitised HTML and attachment list.
//!
//! Threading follows the contract: a message whose `In-Reply-To`/`References` name a message of
//! an email conversation of the same sender on the same account joins that conversation;
//! otherwise its thread root (the first reference, else what it replies to, else its own
//! `Message-ID`) names a new one, deterministically, so concurrent deliveries agree on it. A reply
//! from a different sender, or a new subject without references, therefore starts a new
//! conversation rather than merging into another customer's thread.

use chrono::Utc;
use omnistream_commands::service::ids;
use omnistream_domain::{Channel, InboundContent, MessageType, TenantId};
use serde_json::json;
use uuid::Uuid;

use crate::email::{parse_inbound, ParsedEmail};
use crate::processor::{provider_context, Account, CustomerMessage, Disposition, InboundProcessor};

impl InboundProcessor {
    /// Turns one stored inbound email into contact and conversation commands.
    pub(crate) async fn process_email(
        &self,
        id: i64,
        content_type: Option<&str>,
        raw: &[u8],
    ) -> anyhow::Result<Disposition> {
        // Parsing (MIME, HTML sanitising) can take a while for a large message: off the runtime.
        let (declared, raw) = (content_type.map(str::to_owned), raw.to_vec());
        let parsed =
            tokio::task::spawn_blocking(move || parse_inbound(declared.as_deref(), &raw)).await?;
        let email = match parsed {
            Ok(email) => email,
            Err(error) => return Ok(Disposition::Ignored(format!("unreadable email: {error}"))),
        };
        let recipients: Vec<String> = email
            .to
            .iter()
            .chain(&email.cc)
            .map(|m| m.address.clone())
            .collect();
        let account: Option<Account> = sqlx::query_as(
            "SELECT id, tenant_id, division_id, is_active FROM integration_accounts
             WHERE channel = 'email' AND is_active AND account_key = ANY($1)
             ORDER BY array_position($1, account_key) LIMIT 1",
        )
        .bind(&recipients)
        .fetch_optional(&self.pool)
        .await?;
        let Some(account) = account else {
            return Ok(Disposition::Ignored(
                "no active email account for its recipients".into(),
            ));
        };
        let tenant = TenantId(account.tenant_id);
        let context = provider_context(tenant, "email", id);
        let contact_id = self
            .record_contact(
                &context,
                Channel::Email,
                &email.from.address,
                email.from.name.clone(),
                None,
            )
            .await?;
        // Without a Message-ID the stored payload's id stands in, so a provider's retry of the
        // same delivery (a new row) is not recognised; with one, repeats are.
        let provider_message_id = email
            .message_id
            .clone()
            .unwrap_or_else(|| format!("inbound-webhook-{id}@omnistream"));
        let conversation_id = self
            .thread(tenant, &account, contact_id, &email, &provider_message_id)
            .await?;
        let received = CustomerMessage {
            provider_message_id,
            content: content(&email),
            sender_name: email.from.name.clone(),
            sent_at: email.sent_at.unwrap_or_else(Utc::now),
            raw: json!({"message_id": email.message_id, "from": email.from.address,
                        "in_reply_to": email.in_reply_to, "references": email.references}),
        };
        self.receive(
            &context,
            &account,
            Channel::Email,
            conversation_id,
            contact_id,
            received,
        )
        .await?;
        Ok(Disposition::Processed)
    }

    /// The conversation this email belongs to (see the module documentation).
    async fn thread(
        &self,
        tenant: TenantId,
        account: &Account,
        contact_id: Uuid,
        email: &ParsedEmail,
        own_id: &str,
    ) -> anyhow::Result<Uuid> {
        let mentioned: Vec<&str> = email
            .in_reply_to
            .iter()
            .chain(email.references.iter().rev())
            .map(String::as_str)
            .collect();
        if !mentioned.is_empty() {
            let existing: Option<Uuid> = sqlx::query_scalar(
                "SELECT c.id FROM messages m
                 JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
                 WHERE m.tenant_id = $1 AND m.external_id = ANY($2)
                   AND c.channel = 'email' AND c.contact_id = $3 AND c.integration_account_id = $4
                 ORDER BY array_position($2, m.external_id) LIMIT 1",
            )
            .bind(tenant.as_uuid())
            .bind(&mentioned)
            .bind(contact_id)
            .bind(account.id)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(conversation) = existing {
                return Ok(conversation);
            }
        }
        let root = email
            .references
            .first()
            .or(email.in_reply_to.first())
            .map_or(own_id, String::as_str);
        Ok(ids::email_conversation(
            tenant, account.id, contact_id, root,
        ))
    }
}

/// The message as the inbox shows it: the text body, and the email's own fields (subject,
/// sanitised HTML, addresses, thread ids, attachment list) under `data.email`.
fn content(email: &ParsedEmail) -> InboundContent {
    let attachments: Vec<serde_json::Value> = email
        .attachments
        .iter()
        .map(|a| {
            json!({"media_id": null, "filename": a.filename, "mime_type": a.content_type, "size": a.data.len(),
                   "inline": a.inline, "content_id": a.content_id})
        })
        .collect();
    let addresses = |list: &[crate::email::Mailbox]| {
        list.iter()
            .map(|m| json!({"address": m.address, "name": m.name}))
            .collect::<Vec<_>>()
    };
    let text = email
        .text
        .clone()
        .or_else(|| email.subject.clone())
        .unwrap_or_default();
    InboundContent {
        message_type: MessageType::Text,
        content: Some(text),
        media: None,
        reply_to_provider_id: email.in_reply_to.first().cloned(),
        data: Some(json!({"email": {
            "subject": email.subject,
            "html": email.html,
            "from": {"address": email.from.address, "name": email.from.name},
            "to": addresses(&email.to),
            "cc": addresses(&email.cc),
            "message_id": email.message_id,
            "in_reply_to": email.in_reply_to,
            "references": email.references,
            "attachments": attachments,
        }})),
    }
}
