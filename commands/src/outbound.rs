//! The outbound sender: hands queued messages to their channel and reports the outcome back to
//! the conversation as a command (`MarkSent` with the provider id, or `MarkFailed`).
//!
//! Jobs are claimed with a short lease in a short transaction (never holding a transaction open
//! across the network call, which would hold back every event-log reader). Up to
//! [`MAX_IN_FLIGHT`] attempts run at once, each on its own task, and the sends of each business
//! number are paced to its throughput (`throughput_mps` in the account config, else Meta's
//! default of 80 per second), so a burst is sent at the number's full rate without tripping
//! Meta's throughput limit (130429). A crash between the
//! provider's answer and `MarkSent` leaves the job to be retried when the lease runs out: the
//! provider may then receive that message twice; nothing is ever lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use omnistream_domain::conversation::ConversationCommand;
use omnistream_domain::TenantId;
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::email::{OutgoingEmail, SmtpMailer};
use crate::pacing::Pacer;
use crate::secrets::SecretBox;
use crate::service::{CommandContext, CommandError, ConversationService};
use crate::whatsapp::{message_body, GraphClient, GraphError, OutboundPayload};

/// Jobs claimed per round, at most.
const BATCH: usize = 100;
/// Attempts in flight at once: Meta answers in about 50 ms, so 1,000 sends/s needs ~50.
pub const MAX_IN_FLIGHT: usize = 128;
/// Meta's default throughput per business number (messages per second).
pub const DEFAULT_THROUGHPUT_MPS: u32 = 80;
/// The highest throughput Meta grants a number.
pub const MAX_THROUGHPUT_MPS: u32 = 1000;
/// How long a claimed job is hidden from other senders.
const LEASE_SECONDS: f64 = 60.0;
/// Provider attempts before a retryable error counts as a failure.
const MAX_ATTEMPTS: i32 = 8;

/// Everything the sender needs.
#[derive(Clone)]
pub struct OutboundSender {
    pub pool: PgPool,
    pub conversations: ConversationService,
    pub graph: GraphClient,
    pub secrets: SecretBox,
    /// Spaces the sends of each business number.
    pub pacer: Pacer,
    /// Sends the email channel's replies.
    pub mailer: SmtpMailer,
}

#[derive(Debug, sqlx::FromRow)]
struct ClaimedJob {
    message_id: Uuid,
    tenant_id: Uuid,
    conversation_id: Uuid,
    attempts: i32,
}

#[derive(Debug, sqlx::FromRow)]
struct Delivery {
    message_type: String,
    /// The subject an email reply was given, if any.
    subject: Option<String>,
    content: Option<String>,
    media_url: Option<String>,
    filename: Option<String>,
    template: Option<Value>,
    reply_to_external_id: Option<String>,
    channel: String,
    account_key: Option<String>,
    account_config: Option<Value>,
    contact_known: bool,
    wa_id: Option<String>,
    contact_email: Option<String>,
    contact_name: Option<String>,
    /// `data.email` of the conversation's latest inbound email, for threading the reply.
    last_email: Option<Value>,
}

/// What became of one attempt.
enum Outcome {
    Sent(String),
    Retry {
        error: String,
        /// The provider's Retry-After, when it sent one.
        after: Option<Duration>,
    },
    Failed {
        code: Option<i64>,
        reason: String,
    },
    /// The message is not in the read model yet; try again shortly.
    NotReady,
}

impl OutboundSender {
    /// Sends due jobs until `shutdown` is cancelled, [`MAX_IN_FLIGHT`] at most at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        loop {
            // While every slot is taken, wait for one instead of polling.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                free = slots.acquire() => drop(free),
            }
            let free = slots.available_permits().min(BATCH);
            let pause = match self.claim(free).await {
                Ok(jobs) if jobs.is_empty() => Duration::from_millis(50),
                Ok(jobs) => {
                    for job in jobs {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let sender = self.clone();
                        tokio::spawn(async move {
                            sender.attempt_logged(&job).await;
                            drop(permit);
                        });
                    }
                    Duration::from_millis(2)
                }
                Err(error) => {
                    tracing::warn!(%error, "outbound round failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Claims up to `limit` due jobs, hiding them from other senders for the lease.
    async fn claim(&self, limit: usize) -> anyhow::Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "UPDATE outbound_jobs SET next_attempt_at = now() + make_interval(secs => $1), attempts = attempts + 1
             WHERE message_id IN (
                 SELECT message_id FROM outbound_jobs WHERE next_attempt_at <= now()
                 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING message_id, tenant_id, conversation_id, attempts",
        )
        .bind(LEASE_SECONDS)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn attempt_logged(&self, job: &ClaimedJob) {
        if let Err(error) = self.attempt(job).await {
            tracing::warn!(message_id = %job.message_id, %error, "outbound attempt failed");
        }
    }

    async fn attempt(&self, job: &ClaimedJob) -> anyhow::Result<()> {
        let outcome = match self.load(job).await? {
            // The contacts read model may trail the conversation by a moment.
            Some(delivery) if delivery.contact_known => self.deliver(job, &delivery).await,
            _ => Outcome::NotReady,
        };
        let context = CommandContext::system(TenantId(job.tenant_id));
        match outcome {
            Outcome::Sent(provider_message_id) => {
                let command = ConversationCommand::MarkSent {
                    message_id: job.message_id,
                    provider_message_id,
                    at: Utc::now(),
                };
                self.record(&context, job, command).await?;
            }
            Outcome::Failed { code, reason } => {
                let command = ConversationCommand::MarkFailed {
                    message_id: job.message_id,
                    error_code: code,
                    reason,
                    at: Utc::now(),
                };
                self.record(&context, job, command).await?;
            }
            Outcome::Retry { error, after } if job.attempts < MAX_ATTEMPTS => {
                // Meta's Retry-After when given, else exponential: 1 s, 2 s, 4 s … 5 min.
                let backoff = Duration::from_secs(1u64 << (job.attempts.clamp(1, 9) - 1))
                    .min(Duration::from_secs(300));
                let after = after.unwrap_or(backoff);
                sqlx::query(
                    "UPDATE outbound_jobs SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3 WHERE message_id = $1",
                )
                .bind(job.message_id)
                .bind(after.as_secs_f64())
                .bind(error)
                .execute(&self.pool)
                .await?;
            }
            Outcome::Retry { error, .. } => {
                let command = ConversationCommand::MarkFailed {
                    message_id: job.message_id,
                    error_code: None,
                    reason: error,
                    at: Utc::now(),
                };
                self.record(&context, job, command).await?;
            }
            Outcome::NotReady => {
                sqlx::query(
                    "UPDATE outbound_jobs SET next_attempt_at = now() + interval '100 milliseconds', attempts = attempts - 1
                     WHERE message_id = $1",
                )
                .bind(job.message_id)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    async fn record(
        &self,
        context: &CommandContext,
        job: &ClaimedJob,
        command: ConversationCommand,
    ) -> anyhow::Result<()> {
        match self
            .conversations
            .execute(context, job.conversation_id, command)
            .await
        {
            // The outbound-queue projector removes the job when it applies the event; until
            // then the job's lease hides it.
            Ok(()) => Ok(()),
            // Refused (the message was already settled): no event will remove the job.
            Err(CommandError::Rule(_)) => {
                sqlx::query("DELETE FROM outbound_jobs WHERE message_id = $1")
                    .bind(job.message_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn load(&self, job: &ClaimedJob) -> anyhow::Result<Option<Delivery>> {
        Ok(sqlx::query_as(
            "SELECT m.type AS message_type, m.data->'email'->>'subject' AS subject, m.content, m.media_url, m.filename, m.template,
                    r.external_id AS reply_to_external_id,
                    c.channel, a.account_key, a.config AS account_config, ct.id IS NOT NULL AS contact_known, ct.wa_id,
                    ct.email AS contact_email, ct.name AS contact_name,
                    CASE WHEN c.channel = 'email' THEN
                        (SELECT e.data->'email' FROM messages e
                         WHERE e.conversation_id = c.id AND e.direction = 'inbound' AND e.data ? 'email'
                         ORDER BY e.created_at DESC LIMIT 1) END AS last_email
             FROM messages m
             JOIN conversations c ON c.id = m.conversation_id AND c.tenant_id = m.tenant_id
             LEFT JOIN integration_accounts a ON a.id = c.integration_account_id AND a.tenant_id = c.tenant_id
             LEFT JOIN contacts ct ON ct.id = c.contact_id AND ct.tenant_id = c.tenant_id
             LEFT JOIN messages r ON r.id = CASE WHEN m.reply_to_message_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                                 THEN m.reply_to_message_id::uuid END
                                 AND r.tenant_id = m.tenant_id
             WHERE m.id = $1 AND m.tenant_id = $2 AND m.status = 'pending'",
        )
        .bind(job.message_id)
        .bind(job.tenant_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn deliver(&self, job: &ClaimedJob, delivery: &Delivery) -> Outcome {
        let config: Map<String, Value> = delivery
            .account_config
            .as_ref()
            .and_then(|c| c.as_object().cloned())
            .unwrap_or_default();
        let Ok(config) = self.secrets.open_config(&config) else {
            return Outcome::Failed {
                code: None,
                reason: "the account's credentials cannot be decrypted".into(),
            };
        };
        match delivery.channel.as_str() {
            "whatsapp" => self.deliver_whatsapp(&config, delivery).await,
            "email" => self.deliver_email(job.message_id, &config, delivery).await,
            other => Outcome::Failed {
                code: None,
                reason: format!("sending on {other} is not supported yet"),
            },
        }
    }

    /// A reply by email, threaded under the conversation's latest inbound email.
    async fn deliver_email(
        &self,
        message_id: Uuid,
        config: &Map<String, Value>,
        delivery: &Delivery,
    ) -> Outcome {
        let failed = |reason: &str| Outcome::Failed {
            code: None,
            reason: reason.to_owned(),
        };
        if delivery.message_type != "text" {
            return failed("only text replies are sent by email yet");
        }
        let text = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let Some(from_address) = text("from_address").or_else(|| delivery.account_key.clone())
        else {
            return failed("the email account has no from_address");
        };
        let Some(to_address) = delivery.contact_email.clone() else {
            return failed("the contact has no email address");
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
        let our_id = format!("{}@{domain}", message_id.simple());
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
            Ok(()) => Outcome::Sent(our_id),
            Err(error) if error.is_retryable() => Outcome::Retry {
                error: error.to_string(),
                after: None,
            },
            Err(error) => failed(&error.to_string()),
        }
    }

    /// A message through the WhatsApp Cloud API, paced to the number's throughput.
    async fn deliver_whatsapp(&self, config: &Map<String, Value>, delivery: &Delivery) -> Outcome {
        let text = |key: &str| config.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(phone_number_id), Some(token), Some(to)) = (
            text("phone_number_id"),
            text("access_token"),
            delivery.wa_id.clone(),
        ) else {
            return Outcome::Failed {
                code: None,
                reason: "the integration account or contact is missing WhatsApp details".into(),
            };
        };
        let payload = match delivery.message_type.as_str() {
            "text" => OutboundPayload::Text {
                body: delivery.content.as_deref().unwrap_or_default(),
            },
            "template" => match &delivery.template {
                Some(template) => OutboundPayload::Template { template },
                None => {
                    return Outcome::Failed {
                        code: None,
                        reason: "template message without a template".into(),
                    }
                }
            },
            kind @ ("image" | "video" | "audio" | "document" | "sticker") => {
                match &delivery.media_url {
                    Some(link) => OutboundPayload::Media {
                        kind,
                        link,
                        caption: delivery.content.as_deref(),
                        filename: delivery.filename.as_deref(),
                    },
                    None => {
                        return Outcome::Failed {
                            code: None,
                            reason: "media message without media_url".into(),
                        }
                    }
                }
            }
            other => {
                return Outcome::Failed {
                    code: None,
                    reason: format!("message type {other} cannot be sent"),
                }
            }
        };
        let body = message_body(&to, &payload, delivery.reply_to_external_id.as_deref());
        let throughput = config
            .get("throughput_mps")
            .and_then(Value::as_u64)
            .map_or(DEFAULT_THROUGHPUT_MPS, |mps| {
                mps.clamp(1, u64::from(MAX_THROUGHPUT_MPS)) as u32
            });
        self.pacer.wait(&phone_number_id, throughput).await;
        match self
            .graph
            .send_message(&token, &phone_number_id, &body)
            .await
        {
            Ok(wamid) => Outcome::Sent(wamid),
            Err(error) if error.is_retryable() => {
                let after = error
                    .retry_after()
                    .map(|secs| Duration::from_secs(secs.clamp(1, 300)));
                Outcome::Retry {
                    error: error.to_string(),
                    after,
                }
            }
            Err(GraphError::Api { code, message, .. }) => Outcome::Failed {
                code: Some(code),
                reason: message,
            },
            Err(other) => Outcome::Failed {
                code: None,
                reason: other.to_string(),
            },
        }
    }
}
