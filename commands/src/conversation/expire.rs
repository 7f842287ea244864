//! Expiry: conversations idle for longer than their channel's active chat-expiration rule are
//! expired, on demand (the API) or every five minutes for every tenant ([`ExpiryWorker`]).
//!
//! The inbox read model proposes candidates; the aggregate decides with its own, current facts
//! (the expiry policy), so a customer message that is stored but not yet projected still keeps
//! a conversation open.

use std::time::Duration;

use chrono::Utc;
use omnistream_domain::conversation::policy::expiry;
use omnistream_domain::conversation::ConversationCommand;
use omnistream_domain::{Channel, TenantId};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{ConversationDeps, ServiceError};
use crate::store::CommandContext;

/// How often the worker runs.
const EVERY: Duration = Duration::from_secs(300);

/// Issues `Expire` on every candidate of the context's tenant (only `channel`'s, if given) and
/// returns the conversations whose command was accepted (the aggregate emits nothing for one
/// that is no longer stale, so callers read the outcome back from the inbox).
#[tracing::instrument(skip_all, fields(tenant = %context.tenant_id), err)]
pub async fn expire_stale(
    deps: &ConversationDeps,
    context: &CommandContext,
    channel: Option<Channel>,
) -> Result<Vec<Uuid>, ServiceError> {
    let candidates: Vec<(Uuid, i32)> = sqlx::query_as(
        "SELECT c.id, r.expiration_hours FROM conversations c
         JOIN chat_expiration_rules r ON r.tenant_id = c.tenant_id AND r.channel = c.channel AND r.is_active
         WHERE c.tenant_id = $1 AND c.status IN ('open', 'pending') AND ($2::text IS NULL OR c.channel = $2)
           AND COALESCE(c.last_customer_message_at, c.created_at) < now() - make_interval(hours => r.expiration_hours)",
    )
    .bind(context.tenant_id.as_uuid())
    .bind(channel.map(|c| c.as_str()))
    .fetch_all(&deps.pool)
    .await?;
    let mut commanded = Vec::new();
    for (id, hours) in candidates {
        let now = Utc::now();
        let command = ConversationCommand::Expire {
            at: now,
            cutoff: expiry::cutoff(now, hours.max(0) as u32),
        };
        if let Err(error) = deps.conversations.execute(context, id, command).await {
            tracing::warn!(conversation_id = %id, %error, "could not expire a conversation");
            continue;
        }
        commanded.push(id);
    }
    Ok(commanded)
}

/// The periodic expiry job: every five minutes, [`expire_stale`] for every tenant with an
/// active rule, as the system.
#[derive(Clone)]
pub struct ExpiryWorker {
    /// What the expiry service needs.
    pub deps: ConversationDeps,
}

impl ExpiryWorker {
    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(EVERY) => {}
            }
            let tenants: Vec<Uuid> = match sqlx::query_scalar(
                "SELECT DISTINCT tenant_id FROM chat_expiration_rules WHERE is_active",
            )
            .fetch_all(&self.deps.pool)
            .await
            {
                Ok(tenants) => tenants,
                Err(error) => {
                    tracing::warn!(%error, "expiry job could not list tenants");
                    continue;
                }
            };
            for tenant in tenants {
                let context = CommandContext::system(TenantId(tenant));
                if let Err(error) = expire_stale(&self.deps, &context, None).await {
                    tracing::warn!(%tenant, ?error, "expiry job failed for a tenant");
                }
            }
        }
    }
}
