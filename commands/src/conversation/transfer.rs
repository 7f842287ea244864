//! Hand a conversation on (transfer) or take it (takeover). Who may is the transfer policy's
//! decision; this service looks up the facts it needs (the target agent is active, the division
//! exists, the agent belongs to it) and issues the command.

use chrono::Utc;
use omnistream_domain::conversation::policy::transfer;
use omnistream_domain::conversation::ConversationCommand;
use omnistream_domain::TenantId;
use sqlx::PgPool;
use uuid::Uuid;

use super::{ConversationDeps, ServiceError};
use crate::store::CommandContext;

/// Where a conversation goes: an agent, a division, or both.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// The agent who takes it.
    pub to_agent_id: Option<Uuid>,
    /// The division it moves to.
    pub to_division_id: Option<Uuid>,
    /// Why, for the history.
    pub reason: Option<String>,
}

/// Transfers conversation `id` (currently assigned to `assignee`, as the acting agent was shown
/// it) for the context's agent; returns the transfer's id.
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn transfer(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
    assignee: Option<Uuid>,
    request: Transfer,
) -> Result<Uuid, ServiceError> {
    let agent = context.agent.as_ref().ok_or(ServiceError::AgentRequired)?;
    if !transfer::may_transfer(agent.id, &agent.permissions, assignee) {
        return Err(ServiceError::Forbidden {
            code: "forbidden",
            message: "only the assignee or a manager can transfer",
        });
    }
    let tenant = context.tenant_id;
    if let Some(to_agent) = request.to_agent_id {
        ensure_active_agent(&deps.pool, tenant, to_agent).await?;
    }
    if let Some(division) = request.to_division_id {
        if !division_exists(&deps.pool, tenant, division).await? {
            return Err(ServiceError::Unprocessable {
                code: "invalid_division",
                message: "the division does not exist",
            });
        }
        if let Some(to_agent) = request.to_agent_id {
            if !is_member(&deps.pool, tenant, to_agent, division).await? {
                return Err(ServiceError::Unprocessable {
                    code: "agent_not_in_division",
                    message: "the agent is not in that division",
                });
            }
        }
    }
    let transfer_id = Uuid::new_v4();
    let command = ConversationCommand::Transfer {
        transfer_id,
        to_agent_id: request.to_agent_id,
        to_division_id: request.to_division_id,
        reason: request.reason,
        by: agent.id,
        at: Utc::now(),
    };
    deps.conversations.execute(context, id, command).await?;
    Ok(transfer_id)
}

/// The context's agent takes conversation `id` over (from another human agent only if the
/// transfer policy lets it).
#[tracing::instrument(skip_all, fields(conversation_id = %id), err)]
pub async fn takeover(
    deps: &ConversationDeps,
    context: &CommandContext,
    id: Uuid,
) -> Result<(), ServiceError> {
    let agent = context.agent.as_ref().ok_or(ServiceError::AgentRequired)?;
    let command = ConversationCommand::Takeover {
        transfer_id: Uuid::new_v4(),
        agent_id: agent.id,
        may_take_from_human: transfer::may_take_from_human(&agent.permissions),
        at: Utc::now(),
    };
    deps.conversations.execute(context, id, command).await?;
    Ok(())
}

/// `invalid_agent` unless `agent` is an active agent of `tenant`.
pub async fn ensure_active_agent(
    pool: &PgPool,
    tenant: TenantId,
    agent: Uuid,
) -> Result<(), ServiceError> {
    let active: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM agents WHERE tenant_id = $1 AND id = $2 AND is_active AND deleted_at IS NULL)",
    )
    .bind(tenant.as_uuid())
    .bind(agent)
    .fetch_one(pool)
    .await?;
    if active {
        Ok(())
    } else {
        Err(ServiceError::Unprocessable {
            code: "invalid_agent",
            message: "the agent does not exist or is not active",
        })
    }
}

async fn division_exists(
    pool: &PgPool,
    tenant: TenantId,
    division: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM divisions WHERE tenant_id = $1 AND id = $2)")
        .bind(tenant.as_uuid())
        .bind(division)
        .fetch_one(pool)
        .await
}

async fn is_member(
    pool: &PgPool,
    tenant: TenantId,
    agent: Uuid,
    division: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM agent_divisions WHERE tenant_id = $1 AND agent_id = $2 AND division_id = $3)",
    )
    .bind(tenant.as_uuid())
    .bind(agent)
    .bind(division)
    .fetch_one(pool)
    .await
}
