//! The activity log writer: one `activity_logs` row per change, written on the change's own
//! connection (pass its transaction) so the row and the change commit or roll back together.
//! HTTP handlers, workers and command services all write through [`record`]; the gateway owns
//! only the endpoint that lists the rows.

use omnistream_domain::TenantId;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// One change to record.
#[derive(Debug, Clone)]
pub struct Activity<'a> {
    /// `<entity>.<verb>`, e.g. `agent.created`.
    pub action: &'a str,
    /// e.g. `agent`.
    pub entity_type: &'a str,
    /// The changed entity.
    pub entity_id: Option<String>,
    /// Changed fields and other context (never secrets).
    pub details: Value,
}

/// Who made a change, and from where.
#[derive(Debug, Clone)]
pub struct Actor<'a> {
    /// Tenant the change belongs to.
    pub tenant_id: TenantId,
    /// Acting agent, if any (none for the system).
    pub agent_id: Option<Uuid>,
    /// Its name at the time.
    pub agent_name: Option<&'a str>,
    /// The client's IP address, for changes made through the API.
    pub ip: Option<&'a str>,
    /// The client's `User-Agent`, for changes made through the API.
    pub user_agent: Option<&'a str>,
}

impl Actor<'_> {
    /// The system (a worker, expiry) acting in `tenant_id`: no agent, no request origin.
    pub fn system(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            agent_id: None,
            agent_name: None,
            ip: None,
            user_agent: None,
        }
    }
}

/// Writes one activity-log row on `conn` (pass the change's transaction).
#[tracing::instrument(skip_all, fields(action = activity.action), err)]
pub async fn record(
    conn: &mut PgConnection,
    actor: impl Into<Actor<'_>>,
    activity: Activity<'_>,
) -> Result<(), sqlx::Error> {
    let actor = actor.into();
    sqlx::query(
        r#"INSERT INTO activity_logs (id, tenant_id, agent_id, agent_name, action, entity_type, entity_id, details, ip_address, user_agent)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"#,
    )
    .bind(Uuid::new_v4())
    .bind(actor.tenant_id.as_uuid())
    .bind(actor.agent_id)
    .bind(actor.agent_name)
    .bind(activity.action)
    .bind(activity.entity_type)
    .bind(activity.entity_id)
    .bind(activity.details)
    .bind(actor.ip)
    .bind(actor.user_agent)
    .execute(conn)
    .await?;
    Ok(())
}
