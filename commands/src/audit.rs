//! The activity log writer: one `activity_logs` row per change, written on the change's own
//! connection (pass its transaction) so the row and the change commit or roll back together.
//! HTTP handlers, workers and command services all write through [`record`]; the activity
//! projector derives conversation actions' rows from their events through [`record_once`]. The
//! gateway owns only the endpoint that lists the rows.

use chrono::{DateTime, Utc};
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
    record_once(conn, Uuid::new_v4(), Utc::now(), actor, activity).await
}

/// Writes the activity-log row `id`, recorded at `at`, unless it exists: a row derived from an
/// event takes a deterministic id, so deriving it twice leaves one row.
pub async fn record_once(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
    actor: impl Into<Actor<'_>>,
    activity: Activity<'_>,
) -> Result<(), sqlx::Error> {
    let actor = actor.into();
    sqlx::query(
        r#"INSERT INTO activity_logs (id, tenant_id, agent_id, agent_name, action, entity_type, entity_id, details, ip_address, user_agent, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (id) DO NOTHING"#,
    )
    .bind(id)
    .bind(actor.tenant_id.as_uuid())
    .bind(actor.agent_id)
    .bind(actor.agent_name)
    .bind(activity.action)
    .bind(activity.entity_type)
    .bind(activity.entity_id)
    .bind(activity.details)
    .bind(actor.ip)
    .bind(actor.user_agent)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The event-metadata keys under which a command records who acted and from where (written by
/// `CommandContext`, read back by the activity projector).
pub mod metadata_keys {
    /// The acting agent's id (an API key acts as its creator).
    pub const AGENT_ID: &str = "agent_id";
    /// The acting agent's name at the time.
    pub const AGENT_NAME: &str = "agent_name";
    /// The client's IP address.
    pub const IP: &str = "ip";
    /// The client's `User-Agent`.
    pub const USER_AGENT: &str = "user_agent";
    /// The activity-log action to record instead of the one the event implies (bulk actions).
    pub const ACTIVITY_ACTION: &str = "activity_action";
}

/// The agent who caused an event, read back from the event's `metadata`; `None` when no agent
/// acted (the system, a provider) or the event predates these keys.
pub fn actor_from_metadata(tenant_id: TenantId, metadata: &Value) -> Option<Actor<'_>> {
    let text = |key: &str| metadata.get(key).and_then(Value::as_str);
    let agent_id = text(metadata_keys::AGENT_ID)?.parse::<Uuid>().ok()?;
    Some(Actor {
        tenant_id,
        agent_id: Some(agent_id),
        agent_name: text(metadata_keys::AGENT_NAME),
        ip: text(metadata_keys::IP),
        user_agent: text(metadata_keys::USER_AGENT),
    })
}
