//! The outbound sender: hands queued messages to their channel's adapter
//! ([`super::ChannelAdapter`]) and reports the outcome back to the conversation as a command
//! (`MarkSent` with the provider id, or `MarkFailed`), or schedules a retry.
//!
//! Jobs are claimed with a short lease in a short transaction (never holding a transaction open
//! across the network call, which would hold back every event-log reader). A conversation's
//! messages reach the provider one after the other in the order they were queued, however many
//! senders run: only the oldest unsettled job of a conversation can be claimed, and the task
//! that sent one goes on with the conversation's next. Up to [`MAX_IN_FLIGHT`] conversations are served
//! at once. A crash between the provider's answer and `MarkSent` leaves the job to be retried
//! when the lease runs out: the provider may then receive that message twice; nothing is ever
//! lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use omnistream_domain::conversation::ConversationCommand;
use omnistream_domain::{Channel, TenantId};
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ChannelAdapter, OutboundAttachment, OutboundDelivery, SendOutcome};
use crate::infra::media::{stored_media_id, MediaLinks, MediaStore};
use crate::infra::secrets::SecretBox;
use crate::infra::wakeup::{self, Wakeups};
use crate::store::{CommandContext, CommandError, ConversationService};

/// Jobs claimed per round, at most.
const BATCH: usize = 100;
/// Attempts in flight at once: Meta answers in about 50 ms, so 1,000 sends/s needs ~50.
pub const MAX_IN_FLIGHT: usize = 128;
/// How long a claimed job is hidden from other senders.
const LEASE_SECONDS: f64 = 60.0;
/// Provider attempts before a retryable error counts as a failure.
const MAX_ATTEMPTS: i32 = 8;

/// Everything the sender needs.
#[derive(Clone)]
pub struct OutboundSender {
    pub pool: PgPool,
    pub conversations: ConversationService,
    pub secrets: SecretBox,
    /// One adapter per channel that can send.
    pub adapters: Arc<Vec<Arc<dyn ChannelAdapter>>>,
    /// Where messages' stored media (`media_url` = `/api/media/{id}`) is read from.
    pub media: MediaStore,
    /// Signs the public links Meta fetches stored media from.
    pub media_links: MediaLinks,
    /// Wakes the sender when jobs are queued (else it polls every half second).
    pub wakeups: Wakeups,
}

#[derive(Debug, sqlx::FromRow)]
struct ClaimedJob {
    message_id: Uuid,
    tenant_id: Uuid,
    conversation_id: Uuid,
    attempts: i32,
}

/// Where a job stands after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Sent or failed for good: the job is gone.
    Done,
    /// Waits for a retry (or for the read model): it still heads its conversation's queue.
    Waiting,
}

/// What became of one attempt.
enum Outcome {
    /// What the channel made of it.
    Attempted(SendOutcome),
    /// The message is not in the read model yet; try again shortly.
    NotReady,
}

impl OutboundSender {
    /// Sends due jobs until `shutdown` is cancelled, [`MAX_IN_FLIGHT`] at most at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut wakeup = self.wakeups.subscribe(wakeup::OUTBOUND);
        loop {
            // While every slot is taken, wait for one instead of polling.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                free = slots.acquire() => drop(free),
            }
            let free = slots.available_permits().min(BATCH);
            let pause = match self.claim(free, None).await {
                Ok(jobs) if jobs.is_empty() => {
                    // Queued jobs wake the sender; retries coming due are found by the poll.
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = wakeup.wait(Duration::from_millis(250)) => {}
                    }
                    continue;
                }
                Ok(jobs) => {
                    for job in jobs {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            return;
                        };
                        let sender = self.clone();
                        tokio::spawn(async move {
                            sender.drain(job).await;
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

    /// Claims up to `limit` due jobs (of `conversation` only, when given), hiding them from
    /// other senders for the lease. Only a conversation's oldest unsettled job is claimable,
    /// leased or not, so no two senders ever hold jobs of one conversation: a later job becomes
    /// claimable only once the one before it is settled and gone (and `SKIP LOCKED` keeps two
    /// claims from taking the same head). No lock between claims is needed.
    async fn claim(
        &self,
        limit: usize,
        conversation: Option<Uuid>,
    ) -> anyhow::Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "UPDATE outbound_jobs SET next_attempt_at = now() + make_interval(secs => $1), attempts = attempts + 1
             WHERE message_id IN (
                 SELECT j.message_id FROM outbound_jobs j
                 WHERE j.next_attempt_at <= now() AND ($3::uuid IS NULL OR j.conversation_id = $3)
                   AND NOT EXISTS (SELECT 1 FROM outbound_jobs earlier
                                   WHERE earlier.conversation_id = j.conversation_id AND earlier.seq < j.seq)
                 ORDER BY j.next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING message_id, tenant_id, conversation_id, attempts",
        )
        .bind(LEASE_SECONDS)
        .bind(limit as i64)
        .bind(conversation)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Sends `job`, then the conversation's next jobs while they are due, one after the other.
    async fn drain(&self, mut job: ClaimedJob) {
        loop {
            match self.attempt(&job).await {
                Ok(Settled::Done) => {}
                Ok(Settled::Waiting) => return,
                Err(error) => {
                    tracing::warn!(message_id = %job.message_id, %error, "outbound attempt failed");
                    return;
                }
            }
            match self.claim(1, Some(job.conversation_id)).await {
                Ok(mut next) if !next.is_empty() => job = next.remove(0),
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(%error, "claiming a conversation's next message failed");
                    return;
                }
            }
        }
    }

    /// One attempt at `job`: whether it is settled (sent or failed) or waits for a retry.
    async fn attempt(&self, job: &ClaimedJob) -> anyhow::Result<Settled> {
        let outcome = match self.load(job).await? {
            // The contacts read model may trail the conversation by a moment.
            Some(delivery) if delivery.contact_known => {
                Outcome::Attempted(match self.with_media(delivery).await {
                    Ok(delivery) => self.deliver(&delivery).await,
                    Err(outcome) => outcome,
                })
            }
            _ => Outcome::NotReady,
        };
        let context = CommandContext::system(TenantId(job.tenant_id));
        match outcome {
            Outcome::Attempted(SendOutcome::Sent(provider_message_id)) => {
                let command = ConversationCommand::MarkSent {
                    message_id: job.message_id,
                    provider_message_id,
                    at: Utc::now(),
                };
                self.record(&context, job, command).await?;
                Ok(Settled::Done)
            }
            Outcome::Attempted(SendOutcome::Failed { code, reason }) => {
                let command = ConversationCommand::MarkFailed {
                    message_id: job.message_id,
                    error_code: code,
                    reason,
                    at: Utc::now(),
                };
                self.record(&context, job, command).await?;
                Ok(Settled::Done)
            }
            Outcome::Attempted(SendOutcome::Retry { error, after })
                if job.attempts < MAX_ATTEMPTS =>
            {
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
                Ok(Settled::Waiting)
            }
            Outcome::Attempted(SendOutcome::Retry { error, .. }) => {
                let command = ConversationCommand::MarkFailed {
                    message_id: job.message_id,
                    error_code: None,
                    reason: error,
                    at: Utc::now(),
                };
                self.record(&context, job, command).await?;
                Ok(Settled::Done)
            }
            Outcome::NotReady => {
                sqlx::query(
                    "UPDATE outbound_jobs SET next_attempt_at = now() + interval '100 milliseconds', attempts = attempts - 1
                     WHERE message_id = $1",
                )
                .bind(job.message_id)
                .execute(&self.pool)
                .await?;
                Ok(Settled::Waiting)
            }
        }
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
            // Settled (or refused: the message was already settled). The job goes now, so the
            // conversation's next message need not wait for the outbound-queue projector, whose
            // own removal when it applies the event then finds nothing.
            Ok(()) | Err(CommandError::Rule(_)) => {
                sqlx::query("DELETE FROM outbound_jobs WHERE message_id = $1")
                    .bind(job.message_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
            Err(other) => Err(other.into()),
        }
    }

    async fn load(&self, job: &ClaimedJob) -> anyhow::Result<Option<OutboundDelivery>> {
        let delivery: Option<OutboundDelivery> = sqlx::query_as(
            "SELECT m.type AS message_type, m.data->'email'->>'subject' AS subject, m.data->>'message_tag' AS message_tag, m.content, m.media_url, m.filename, m.template,
                    r.external_id AS reply_to_external_id,
                    c.channel, a.account_key, a.config AS account_config, ct.id IS NOT NULL AS contact_known, ct.wa_id,
                    ct.messenger_psid, ct.instagram_id,
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
        .await?;
        Ok(delivery.map(|delivery| OutboundDelivery {
            message_id: job.message_id,
            tenant_id: job.tenant_id,
            conversation_id: job.conversation_id,
            ..delivery
        }))
    }

    /// Resolves a message's stored media (`media_url` = `/api/media/{id}` of its tenant): email
    /// attaches the bytes; other channels get a signed public link the provider can fetch.
    async fn with_media(
        &self,
        mut delivery: OutboundDelivery,
    ) -> Result<OutboundDelivery, SendOutcome> {
        let Some(id) = delivery.media_url.as_deref().and_then(stored_media_id) else {
            return Ok(delivery);
        };
        let retry = |error: crate::infra::media::MediaError| SendOutcome::Retry {
            error: error.to_string(),
            after: None,
        };
        let tenant = TenantId(delivery.tenant_id);
        let media = self
            .media
            .find(tenant, id)
            .await
            .map_err(retry)?
            .ok_or_else(|| SendOutcome::failed("the message's media no longer exists"))?;
        if delivery.channel == Channel::Email.as_str() {
            let bytes = self.media.read(&media).await.map_err(retry)?;
            let filename = delivery.filename.get_or_insert(media.filename).clone();
            delivery.attachment = Some(OutboundAttachment {
                filename,
                mime_type: media.mime_type,
                bytes,
            });
        } else {
            delivery.filename.get_or_insert(media.filename);
            delivery.media_url = Some(self.media_links.public_url(tenant, id, Utc::now()));
        }
        Ok(delivery)
    }

    /// Hands the message to its channel's adapter with the account's decrypted config.
    async fn deliver(&self, delivery: &OutboundDelivery) -> SendOutcome {
        let empty = Map::new();
        let stored = delivery
            .account_config
            .as_ref()
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let Ok(config) = self.secrets.open_config(delivery.tenant_id, stored) else {
            return SendOutcome::failed("the account's credentials cannot be decrypted");
        };
        let adapter = self
            .adapters
            .iter()
            .find(|adapter| adapter.channel().as_str() == delivery.channel);
        match adapter {
            Some(adapter) => adapter.send(&config, delivery).await,
            None => SendOutcome::failed(format!(
                "sending on {} is not supported yet",
                delivery.channel
            )),
        }
    }
}
