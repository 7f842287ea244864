//! Inbound email into conversations: the account it is addressed to, the sender's contact, the
//! thread's conversation, its attachments in the media store, and the message with its subject,
//! sanitised HTML and attachment list.
//!
//! Routing accepts the account's inbound address (`account_key`, `local@domain`) and any tagged
//! form of it (`local+anything@domain`), which is how replies to a conversation's token address
//! arrive.
//!
//! Threading follows the contract: a message whose `In-Reply-To`/`References` name a message of
//! an email conversation of the same sender on the same account joins that conversation; else a
//! recipient address carrying a valid reply token ([`ReplyTokens`]) of such a conversation
//! (same account, same sender) joins it; otherwise its thread root (the first reference, else
//! what it replies to, else its own `Message-ID`) names a new one, deterministically, so
//! concurrent deliveries agree on it. A reply from a different sender (a forwarded thread), a
//! tampered token, or a new subject without references therefore starts a new conversation
//! rather than merging into another customer's thread.
//!
//! Attachments are stored as media of the conversation before the message is recorded, under
//! ids derived from the message's own id, so processing the same email again stores nothing
//! twice. The message refers to them by `/api/media/{id}`.
//!
//! [`ReplyTokens`]: omnistream_commands::channels::email::reply_address::ReplyTokens

use chrono::Utc;
use omnistream_commands::channels::email::reply_address::untagged;
use omnistream_commands::infra::media::{
    attachment_id, essence, media_url, safe_filename, NewMedia, StoredMedia, MAX_MEDIA_BYTES,
};
use omnistream_commands::store::ids;
use omnistream_domain::{Channel, InboundContent, InboundMedia, MessageType, TenantId};
use serde_json::json;
use uuid::Uuid;

use super::{parse_inbound, Attachment, Mailbox, ParsedEmail};
use crate::channels::{provider_context, Account, CustomerMessage, Disposition, StoredPayload};
use crate::InboundProcessor;

/// An email account with its key, for routing.
#[derive(sqlx::FromRow)]
struct KeyedAccount {
    account_key: String,
    #[sqlx(flatten)]
    account: Account,
}

/// The account an email to `recipients` (lower-cased, in order) belongs to: mail for
/// `local+tag@domain` belongs to the owner of `local@domain` when there is one (its account of
/// that exact tagged address, else the base address's account); otherwise to the account of the
/// address as written.
fn route_email(recipients: &[String], mut accounts: Vec<KeyedAccount>) -> Option<Account> {
    let position =
        |accounts: &[KeyedAccount], key: &str| accounts.iter().position(|a| a.account_key == key);
    for recipient in recipients {
        let base = untagged(recipient);
        let exact = position(&accounts, recipient);
        let chosen = match base.as_deref().and_then(|base| position(&accounts, base)) {
            Some(base) => match exact {
                Some(exact)
                    if accounts[exact].account.tenant_id == accounts[base].account.tenant_id =>
                {
                    exact
                }
                _ => base,
            },
            None => match exact {
                Some(exact) => exact,
                None => continue,
            },
        };
        return Some(accounts.swap_remove(chosen).account);
    }
    None
}

/// What became of one attachment.
enum Kept {
    Stored(StoredMedia),
    /// Not stored, with the reason (recorded in the message's data).
    Skipped(&'static str),
}

/// Turns one stored inbound email into contact and conversation commands.
pub(super) async fn handle(
    processor: &InboundProcessor,
    payload: StoredPayload,
) -> anyhow::Result<Disposition> {
    let StoredPayload {
        id,
        content_type,
        body: raw,
        ..
    } = payload;
    // Parsing (MIME, HTML sanitising) can take a while for a large message: off the runtime.
    let parsed =
        tokio::task::spawn_blocking(move || parse_inbound(content_type.as_deref(), &raw)).await?;
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
    let recipients: Vec<String> = recipients.iter().map(|r| r.to_lowercase()).collect();
    let candidates: Vec<String> = recipients
        .iter()
        .flat_map(|address| [Some(address.clone()), untagged(address)])
        .flatten()
        .collect();
    let keyed: Vec<KeyedAccount> = sqlx::query_as(
        "SELECT account_key, id, tenant_id, division_id, is_active FROM integration_accounts
         WHERE channel = 'email' AND is_active AND account_key = ANY($1)",
    )
    .bind(&candidates)
    .fetch_all(&processor.pool)
    .await?;
    let account = route_email(&recipients, keyed);
    let Some(account) = account else {
        return Ok(Disposition::Ignored(
            "no active email account for its recipients".into(),
        ));
    };
    let tenant = TenantId(account.tenant_id);
    let context = provider_context(tenant, "email", id);
    let contact_id = processor
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
    let message_id = ids::inbound_message(tenant, account.id, &provider_message_id);
    if processor.already_received(tenant, message_id).await? {
        return Ok(Disposition::Processed);
    }
    let conversation_id = thread(
        processor,
        tenant,
        &account,
        contact_id,
        &email,
        &provider_message_id,
        &recipients,
    )
    .await?;
    let mut kept = Vec::with_capacity(email.attachments.len());
    for (index, attachment) in email.attachments.iter().enumerate() {
        let new = NewMedia {
            id: attachment_id(message_id, index),
            tenant,
            conversation_id: Some(conversation_id),
            filename: safe_filename(&attachment.filename),
            mime_type: essence(&attachment.content_type)
                .unwrap_or_else(|| "application/octet-stream".into()),
        };
        kept.push(if attachment.data.len() as u64 > MAX_MEDIA_BYTES {
            Kept::Skipped("larger than 25 MiB")
        } else {
            Kept::Stored(processor.media.store_bytes(new, &attachment.data).await?)
        });
    }
    let received = CustomerMessage {
        provider_message_id,
        content: content(&email, &kept),
        sender_name: email.from.name.clone(),
        sent_at: email.sent_at.unwrap_or_else(Utc::now),
        raw: json!({"message_id": email.message_id, "from": email.from.address,
                    "in_reply_to": email.in_reply_to, "references": email.references}),
    };
    // Checked new above, before threading and storing the attachments.
    let open = account.open(Channel::Email, conversation_id, contact_id, Utc::now());
    processor
        .receive_new(&context, open, message_id, received)
        .await?;
    Ok(Disposition::Processed)
}

/// The conversation this email belongs to (see the module documentation).
async fn thread(
    processor: &InboundProcessor,
    tenant: TenantId,
    account: &Account,
    contact_id: Uuid,
    email: &ParsedEmail,
    own_id: &str,
    recipients: &[String],
) -> anyhow::Result<Uuid> {
    let mentioned: Vec<&str> = email
        .in_reply_to
        .iter()
        .chain(email.references.iter().rev())
        .map(String::as_str)
        .collect();
    let tokened: Vec<Uuid> = recipients
        .iter()
        .filter_map(|address| processor.reply_tokens.conversation_in(address, tenant))
        .collect();
    if !mentioned.is_empty() || !tokened.is_empty() {
        // One round trip for both rules: a conversation found through the mentioned ids
        // (nearest first) wins over one named by a reply token.
        let existing: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM (
                 SELECT c.id, 0 AS rule, array_position($2, m.external_id) AS rank
                 FROM messages m
                 JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
                 WHERE m.tenant_id = $1 AND m.external_id = ANY($2)
                   AND c.channel = 'email' AND c.contact_id = $4 AND c.integration_account_id = $5
                 UNION ALL
                 SELECT id, 1, array_position($3, id) FROM conversations
                 WHERE tenant_id = $1 AND id = ANY($3) AND channel = 'email'
                   AND contact_id = $4 AND integration_account_id = $5
             ) found
             ORDER BY rule, rank LIMIT 1",
        )
        .bind(tenant.as_uuid())
        .bind(&mentioned)
        .bind(&tokened)
        .bind(contact_id)
        .bind(account.id)
        .fetch_optional(&processor.pool)
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

/// One `attachments` entry of the message: `{media_id, filename, mime_type, size}` (contract
/// §3), with whether it was inline and its Content-ID.
fn attachment_entry(attachment: &Attachment, kept: &Kept) -> serde_json::Value {
    let mut entry = json!({"media_id": null, "filename": safe_filename(&attachment.filename),
        "mime_type": essence(&attachment.content_type).unwrap_or_else(|| "application/octet-stream".into()),
        "size": attachment.data.len(), "inline": attachment.inline, "content_id": attachment.content_id});
    match kept {
        Kept::Stored(media) => {
            entry["media_id"] = json!(media.id);
            entry["filename"] = json!(media.filename);
            entry["mime_type"] = json!(media.mime_type);
            entry["size"] = json!(media.size);
        }
        Kept::Skipped(reason) => entry["skipped"] = json!(reason),
    }
    entry
}

/// The sanitised HTML with the `cid:` references of stored inline parts pointing at the media.
fn html_with_media(email: &ParsedEmail, kept: &[Kept]) -> Option<String> {
    let mut html = email.html.clone()?;
    for (attachment, kept) in email.attachments.iter().zip(kept) {
        if let (Some(content_id), Kept::Stored(media)) = (&attachment.content_id, kept) {
            html = html.replace(
                &format!("\"cid:{content_id}\""),
                &format!("\"{}\"", media_url(media.id)),
            );
        }
    }
    Some(html)
}

/// The message as the inbox shows it: the text body, the first stored attachment as its media,
/// and the email's own fields (subject, sanitised HTML, addresses, thread ids, attachment list)
/// under `data.email`.
fn content(email: &ParsedEmail, kept: &[Kept]) -> InboundContent {
    let attachments: Vec<serde_json::Value> = email
        .attachments
        .iter()
        .zip(kept)
        .map(|(attachment, kept)| attachment_entry(attachment, kept))
        .collect();
    let media = kept.iter().find_map(|kept| match kept {
        Kept::Stored(media) => Some(InboundMedia {
            provider_media_id: None,
            url: Some(media_url(media.id)),
            mime_type: Some(media.mime_type.clone()),
            sha256: Some(media.sha256.clone()),
            filename: Some(media.filename.clone()),
        }),
        Kept::Skipped(_) => None,
    });
    let addresses = |list: &[Mailbox]| {
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
        media,
        reply_to_provider_id: email.in_reply_to.first().cloned(),
        data: Some(json!({"email": {
            "subject": email.subject,
            "html": html_with_media(email, kept),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed() -> ParsedEmail {
        let raw = "From: budi@example.com\r\nTo: support@shop.example\r\nSubject: Files\r\nMessage-ID: <f1@example.com>\r\n\
            MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n\
            --m\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p><img src=\"cid:logo@x\" alt=\"a\"><img src=\"cid:big@x\" alt=\"b\">\r\n\
            --m\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"logo.png\"\r\nContent-ID: <logo@x>\r\n\
            Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
            --m\r\nContent-Type: image/png\r\nContent-Disposition: inline; filename=\"../big.png\"\r\nContent-ID: <big@x>\r\n\
            Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--m--\r\n";
        crate::channels::email::parse_mime(raw.as_bytes()).unwrap()
    }

    fn stored(id: Uuid) -> StoredMedia {
        StoredMedia {
            id,
            tenant_id: Uuid::new_v4(),
            conversation_id: None,
            filename: "logo.png".into(),
            mime_type: "image/png".into(),
            size: 8,
            sha256: "ab".repeat(32),
            storage_key: format!("t/{id}"),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn stored_attachments_become_the_messages_media_and_skipped_ones_are_noted() {
        let email = parsed();
        let id = Uuid::new_v4();
        let kept = [
            Kept::Stored(stored(id)),
            Kept::Skipped("larger than 25 MiB"),
        ];
        let content = content(&email, &kept);
        let media = content.media.expect("the first stored attachment");
        assert_eq!(media.url, Some(format!("/api/media/{id}")));
        assert_eq!(media.mime_type.as_deref(), Some("image/png"));
        assert_eq!(media.filename.as_deref(), Some("logo.png"));
        let data = content.data.unwrap();
        let attachments = data["email"]["attachments"].as_array().unwrap();
        assert_eq!(attachments[0]["media_id"], json!(id));
        assert_eq!(attachments[1]["media_id"], json!(null));
        assert_eq!(attachments[1]["skipped"], "larger than 25 MiB");
        assert_eq!(attachments[1]["filename"], "big.png");
        let html = data["email"]["html"].as_str().unwrap();
        assert!(html.contains(&format!("\"/api/media/{id}\"")), "{html}");
        assert!(
            html.contains("cid:big@x"),
            "a skipped part keeps its cid: {html}"
        );
    }

    #[test]
    fn an_email_without_stored_attachments_has_no_media() {
        let email = parsed();
        let kept = [Kept::Skipped("x"), Kept::Skipped("y")];
        assert_eq!(content(&email, &kept).media, None);
    }

    fn account(key: &str, tenant: u128, id: u128) -> KeyedAccount {
        KeyedAccount {
            account_key: key.to_owned(),
            account: Account {
                id: Uuid::from_u128(id),
                tenant_id: Uuid::from_u128(tenant),
                division_id: None,
                is_active: true,
            },
        }
    }

    fn routed(recipient: &str, accounts: Vec<KeyedAccount>) -> Option<(u128, u128)> {
        route_email(&[recipient.to_owned()], accounts)
            .map(|a| (a.tenant_id.as_u128(), a.id.as_u128()))
    }

    #[test]
    fn tagged_mail_belongs_to_the_owner_of_the_base_address() {
        let foreign_tag = || {
            vec![
                account("support@acme.test", 1, 10),
                account("support+sales@acme.test", 2, 20),
            ]
        };
        assert_eq!(
            routed("support+sales@acme.test", foreign_tag()),
            Some((1, 10))
        );
        assert_eq!(routed("support@acme.test", foreign_tag()), Some((1, 10)));
        let own_tag = vec![
            account("support@acme.test", 1, 10),
            account("support+sales@acme.test", 1, 11),
        ];
        assert_eq!(routed("support+sales@acme.test", own_tag), Some((1, 11)));
        let tag_only = vec![account("support+sales@acme.test", 2, 20)];
        assert_eq!(routed("support+sales@acme.test", tag_only), Some((2, 20)));
        assert_eq!(routed("nobody@acme.test", foreign_tag()), None);
    }
}
