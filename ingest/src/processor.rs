//! Turns stored inbound payloads into contacts and conversation commands.

use std::time::Duration;

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use omnistream_commands::channels::email::reply_address::ReplyTokens;
use omnistream_commands::infra::media::MediaStore;
use omnistream_commands::service::{
    ids, CommandContext, CommandError, ContactService, ConversationService,
};
use omnistream_domain::contact::ContactCommand;
use omnistream_domain::conversation::{ConversationCommand, InboundMessage, OpenConversation};
use omnistream_domain::{Channel, TenantId};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::channels::meta_messaging::{INSTAGRAM_OBJECT, MESSENGER_OBJECT};
use crate::channels::whatsapp::{
    parse_whatsapp, WhatsAppChange, WhatsAppInbound, WhatsAppStatus, WHATSAPP_OBJECT,
};

/// Rows claimed per round.
const BATCH: i64 = 200;
/// Bytes of payload claimed per round: large emails are claimed a few at a time (always at
/// least one), so a round never holds hundreds of them in memory.
const BATCH_BYTES: i64 = 64 * 1024 * 1024;
/// Ordering groups (see [`ordering_key`]) processed at once.
const CONCURRENCY: usize = 8;
/// Attempts before a payload is parked as `failed`.
const MAX_ATTEMPTS: i32 = 10;

/// Works through `inbound_webhooks`.
#[derive(Clone)]
pub struct InboundProcessor {
    pub pool: PgPool,
    pub conversations: ConversationService,
    pub contacts: ContactService,
    /// Where inbound attachments are stored.
    pub media: MediaStore,
    /// Checks the conversation tokens of email reply addresses.
    pub reply_tokens: ReplyTokens,
}

#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    provider: String,
    content_type: Option<String>,
    body: Vec<u8>,
    attempts: i32,
}

/// A claimed payload, parsed once.
struct Inbound {
    id: i64,
    attempts: i32,
    body: Body,
}

/// A payload by provider: Meta's JSON (`None`: not JSON), or an email as stored.
enum Body {
    Meta(Option<serde_json::Value>),
    Email {
        content_type: Option<String>,
        raw: Vec<u8>,
    },
}

#[derive(sqlx::FromRow)]
pub(crate) struct Account {
    pub(crate) id: Uuid,
    pub(crate) tenant_id: Uuid,
    pub(crate) division_id: Option<Uuid>,
    pub(crate) is_active: bool,
}

impl Account {
    /// How a customer's first message on this account opens `conversation_id`.
    pub(crate) fn open(
        &self,
        channel: Channel,
        conversation_id: Uuid,
        contact_id: Uuid,
        at: chrono::DateTime<Utc>,
    ) -> OpenConversation {
        OpenConversation {
            conversation_id,
            tenant_id: self.tenant_id,
            channel,
            integration_account_id: self.id,
            contact_id,
            division_id: self.division_id,
            at,
        }
    }
}

/// A customer's message as a channel delivered it, before it is recorded.
pub(crate) struct CustomerMessage {
    /// The provider's id for it (wamid, mid, Message-ID): the idempotency key.
    pub(crate) provider_message_id: String,
    pub(crate) content: omnistream_domain::InboundContent,
    pub(crate) sender_name: Option<String>,
    /// When the customer sent it, per the provider.
    pub(crate) sent_at: chrono::DateTime<Utc>,
    /// The provider's payload of it, as received.
    pub(crate) raw: serde_json::Value,
}

/// What became of one payload.
pub(crate) enum Disposition {
    Processed,
    Ignored(String),
}

impl InboundProcessor {
    /// Processes payloads until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let pause = match self.process_due().await {
                Ok(0) => Duration::from_millis(25),
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(%error, "inbound round failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One round; returns how many payloads were claimed.
    pub async fn process_due(&self) -> anyhow::Result<usize> {
        // A lease instead of a long transaction: readers of the event log wait for open
        // transactions, so none may stay open across the commands below. A lease outlived by a
        // crashed processor is taken over after 15 s; processing twice is harmless (idempotent).
        let claimed: Vec<Claimed> = sqlx::query_as(
            "UPDATE inbound_webhooks SET attempts = attempts + 1, next_attempt_at = now() + interval '15 seconds'
             WHERE id IN (SELECT id FROM (
                              SELECT id, sum(octet_length(body)) OVER (ORDER BY id) - octet_length(body) AS before
                              FROM (SELECT id, body FROM inbound_webhooks WHERE status = 'pending' AND next_attempt_at <= now()
                                    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED) due) sized
                          WHERE before < $2)
             RETURNING id, provider, content_type, body, attempts",
        )
        .bind(BATCH)
        .bind(BATCH_BYTES)
        .fetch_all(&self.pool)
        .await?;
        let count = claimed.len();
        // Payloads of one customer are processed in arrival order; different customers at once.
        let mut groups: Vec<(String, Vec<Inbound>)> = Vec::new();
        let mut claimed = claimed;
        claimed.sort_by_key(|row| row.id);
        for row in claimed {
            let (body, key) = if row.provider == "email" {
                // Emails keep their arrival order, so a reply never overtakes what it answers.
                let body = Body::Email {
                    content_type: row.content_type,
                    raw: row.body,
                };
                (body, "email".to_owned())
            } else {
                let payload = serde_json::from_slice(&row.body).ok();
                let key = ordering_key(payload.as_ref());
                (Body::Meta(payload), key)
            };
            let inbound = Inbound {
                id: row.id,
                attempts: row.attempts,
                body,
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, rows)) => rows.push(inbound),
                None => groups.push((key, vec![inbound])),
            }
        }
        futures::stream::iter(groups)
            .map(|(_, rows)| async move {
                for inbound in rows {
                    self.settle(inbound).await?;
                }
                anyhow::Ok(())
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(count)
    }

    /// Processes one payload and records the outcome on its row.
    async fn settle(&self, row: Inbound) -> anyhow::Result<()> {
        let Inbound { id, attempts, body } = row;
        let outcome = match body {
            Body::Meta(payload) => self.process(id, payload.as_ref()).await,
            // Handed over, not copied: an email body may be tens of megabytes.
            Body::Email { content_type, raw } => self.process_email(id, content_type, raw).await,
        };
        let (status, error, retry) = match outcome {
            Ok(Disposition::Processed) => ("processed", None, false),
            Ok(Disposition::Ignored(reason)) => ("ignored", Some(reason), false),
            Err(error) if attempts < MAX_ATTEMPTS => ("pending", Some(error.to_string()), true),
            Err(error) => ("failed", Some(error.to_string()), false),
        };
        if retry {
            tracing::warn!(
                id,
                error = error.as_deref().unwrap_or_default(),
                "inbound payload will be retried"
            );
        }
        sqlx::query(
            "UPDATE inbound_webhooks SET status = $2, error = $3,
                processed_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END,
                next_attempt_at = CASE WHEN $2 = 'pending' THEN now() + make_interval(secs => least(2 ^ attempts, 300)) ELSE next_attempt_at END
             WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn process(
        &self,
        id: i64,
        payload: Option<&serde_json::Value>,
    ) -> anyhow::Result<Disposition> {
        let Some(payload) = payload else {
            return Ok(Disposition::Ignored("not JSON".into()));
        };
        let object = payload.get("object").and_then(|o| o.as_str());
        if matches!(object, Some(MESSENGER_OBJECT | INSTAGRAM_OBJECT)) {
            return self.process_messaging(id, payload).await;
        }
        if object != Some(WHATSAPP_OBJECT) {
            return Ok(Disposition::Ignored("unsupported object".into()));
        }
        let batch = parse_whatsapp(payload);
        let mut handled = 0;
        for change in &batch.changes {
            handled += self.whatsapp_change(id, change).await?;
        }
        if handled == 0 {
            return Ok(Disposition::Ignored(
                "nothing for a known, active account".into(),
            ));
        }
        Ok(Disposition::Processed)
    }

    async fn whatsapp_change(&self, id: i64, change: &WhatsAppChange) -> anyhow::Result<usize> {
        let key = Channel::Whatsapp.account_key(&change.phone_number_id);
        let Some(account) = self.active_account(Channel::Whatsapp, &key).await? else {
            tracing::info!(phone_number_id = %change.phone_number_id, "webhook for an unknown or inactive account; kept in the raw log");
            return Ok(0);
        };
        let tenant = TenantId(account.tenant_id);
        let context = provider_context(tenant, "whatsapp", id);
        for message in &change.messages {
            self.inbound(&context, &account, message).await?;
        }
        for status in &change.statuses {
            self.status(&context, &account, status).await?;
        }
        Ok(change.messages.len() + change.statuses.len())
    }

    async fn inbound(
        &self,
        context: &CommandContext,
        account: &Account,
        message: &WhatsAppInbound,
    ) -> anyhow::Result<()> {
        let tenant = context.tenant_id;
        let contact_id = self
            .record_contact(
                context,
                Channel::Whatsapp,
                &message.from,
                message.profile_name.clone(),
                Some(message.from.clone()),
            )
            .await?;
        let conversation_id = ids::conversation(tenant, account.id, contact_id);
        let message_id = ids::inbound_message(tenant, account.id, &message.provider_message_id);
        let received = CustomerMessage {
            provider_message_id: message.provider_message_id.clone(),
            content: message.content_for(message_id),
            sender_name: message.profile_name.clone(),
            sent_at: message.sent_at,
            raw: message.raw.clone(),
        };
        self.receive(
            context,
            account,
            Channel::Whatsapp,
            conversation_id,
            contact_id,
            received,
        )
        .await
    }

    /// Records a customer's message into `conversation_id` (opened or reopened as needed),
    /// unless it was already received.
    pub(crate) async fn receive(
        &self,
        context: &CommandContext,
        account: &Account,
        channel: Channel,
        conversation_id: Uuid,
        contact_id: Uuid,
        message: CustomerMessage,
    ) -> anyhow::Result<()> {
        let tenant = context.tenant_id;
        let message_id = ids::inbound_message(tenant, account.id, &message.provider_message_id);
        if self.already_received(tenant, message_id).await? {
            return Ok(());
        }
        let open = account.open(channel, conversation_id, contact_id, Utc::now());
        self.receive_new(context, open, message_id, message).await
    }

    /// Records a customer's message as `message_id` into the conversation `open` names (opened
    /// or reopened as needed), once [`Self::already_received`] has said it is new; received now
    /// (`open.at`).
    pub(crate) async fn receive_new(
        &self,
        context: &CommandContext,
        open: OpenConversation,
        message_id: Uuid,
        message: CustomerMessage,
    ) -> anyhow::Result<()> {
        let conversation_id = open.conversation_id;
        let command = ConversationCommand::ReceiveInbound {
            message: InboundMessage {
                message_id,
                provider_message_id: Some(message.provider_message_id),
                content: message.content,
                sender_name: message.sender_name,
                sent_at: message.sent_at,
                received_at: open.at,
                raw: message.raw,
            },
            open,
        };
        self.execute(context, conversation_id, command).await
    }

    async fn status(
        &self,
        context: &CommandContext,
        account: &Account,
        status: &WhatsAppStatus,
    ) -> anyhow::Result<()> {
        let tenant = context.tenant_id;
        let contact_id = ids::contact(tenant, Channel::Whatsapp, &status.recipient_id);
        let conversation_id = ids::conversation(tenant, account.id, contact_id);
        let command = ConversationCommand::RecordProviderStatus(status.status.clone());
        self.execute(context, conversation_id, command).await
    }

    /// The account of `channel` with this `account_key`, unless it is unknown or inactive.
    pub(crate) async fn active_account(
        &self,
        channel: Channel,
        key: &str,
    ) -> anyhow::Result<Option<Account>> {
        let account: Option<Account> = sqlx::query_as(
            "SELECT id, tenant_id, division_id, is_active FROM integration_accounts
             WHERE channel = $1 AND account_key = $2",
        )
        .bind(channel.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(account.filter(|a| a.is_active))
    }

    /// Records the customer's identity on `channel` on their contact (created on first sight);
    /// returns the contact's id.
    pub(crate) async fn record_contact(
        &self,
        context: &CommandContext,
        channel: Channel,
        external_id: &str,
        profile_name: Option<String>,
        phone_number: Option<String>,
    ) -> anyhow::Result<Uuid> {
        let contact_id = ids::contact(context.tenant_id, channel, external_id);
        let identity = ContactCommand::RecordIdentity {
            tenant_id: context.tenant_id.as_uuid(),
            channel,
            external_id: external_id.to_owned(),
            profile_name,
            phone_number,
            at: Utc::now(),
        };
        match self.contacts.execute(context, contact_id, identity).await {
            Ok(()) | Err(CommandError::Rule(_)) => Ok(contact_id),
            Err(other) => Err(other.into()),
        }
    }

    /// Whether the inbound message with this deterministic id is already in the read model. The
    /// aggregate remembers only recent provider ids; a much later repeat of an old message is
    /// recognised here.
    pub(crate) async fn already_received(
        &self,
        tenant: TenantId,
        message_id: Uuid,
    ) -> anyhow::Result<bool> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE id = $1 AND tenant_id = $2)",
        )
        .bind(message_id)
        .bind(tenant.as_uuid())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Executes a conversation command; a rule refusal is final, so it is logged, not retried.
    pub(crate) async fn execute(
        &self,
        context: &CommandContext,
        conversation_id: Uuid,
        command: ConversationCommand,
    ) -> anyhow::Result<()> {
        match self
            .conversations
            .execute(context, conversation_id, command)
            .await
        {
            Ok(()) => Ok(()),
            // A rule refusal is final (e.g. a status for a conversation that never existed).
            Err(CommandError::Rule(rule)) => {
                tracing::info!(%conversation_id, %rule, "inbound command refused");
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }
}

/// Who acts for commands from a provider's payload `id` in `tenant`.
pub(crate) fn provider_context(tenant: TenantId, provider: &str, id: i64) -> CommandContext {
    CommandContext {
        tenant_id: tenant,
        actor_type: "provider",
        actor_id: Some(provider.to_owned()),
        request_id: None,
        causation_id: Some(format!("inbound_webhook:{id}")),
        ..CommandContext::system(tenant)
    }
}

/// The customer a payload is about (business number or Page/Instagram account, and customer),
/// so that payloads of one customer keep their order while others are processed alongside;
/// payloads without one share a key.
fn ordering_key(payload: Option<&serde_json::Value>) -> String {
    if let Some(event) = payload.and_then(|p| p.pointer("/entry/0/messaging/0")) {
        let id = |pointer: &str| {
            event
                .pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
        };
        let echo = event
            .pointer("/message/is_echo")
            .and_then(serde_json::Value::as_bool)
            == Some(true);
        let (business, customer) = if echo {
            (id("/sender/id"), id("/recipient/id"))
        } else {
            (id("/recipient/id"), id("/sender/id"))
        };
        return format!("page:{business}:{customer}");
    }
    let value = payload.and_then(|p| p.pointer("/entry/0/changes/0/value"));
    let text = |pointer: &str| {
        value
            .and_then(|v| v.pointer(pointer))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    };
    let customer = [text("/messages/0/from"), text("/statuses/0/recipient_id")]
        .into_iter()
        .find(|c| !c.is_empty())
        .unwrap_or_default();
    format!("{}:{customer}", text("/metadata/phone_number_id"))
}

#[cfg(test)]
mod tests {
    use super::ordering_key;
    use serde_json::json;

    #[test]
    fn payloads_are_ordered_per_customer_on_every_meta_channel() {
        let whatsapp = json!({"entry": [{"changes": [{"value": {"metadata": {"phone_number_id": "100"},
                                                              "messages": [{"from": "6281"}]}}]}]});
        assert_eq!(ordering_key(Some(&whatsapp)), "100:6281");
        let message = json!({"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE1"}, "message": {"mid": "m"}}]}]});
        let echo = json!({"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "PAGE1"}, "recipient": {"id": "PSID1"}, "message": {"mid": "e", "is_echo": true}}]}]});
        let other = json!({"object": "page", "entry": [{"messaging": [
            {"sender": {"id": "PSID2"}, "recipient": {"id": "PAGE1"}, "read": {"watermark": 1}}]}]});
        assert_eq!(ordering_key(Some(&message)), ordering_key(Some(&echo)));
        assert_ne!(ordering_key(Some(&message)), ordering_key(Some(&other)));
        assert_eq!(ordering_key(None), ":");
    }
}
