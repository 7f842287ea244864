//! Who runs a command: the [`CommandContext`] every application service takes (actor, request,
//! causation), and the metadata it stores with each event.

use std::collections::HashMap;

use chrono::Utc;
use omnistream_domain::{Permission, TenantId};
use uuid::Uuid;

use crate::audit::metadata_keys as keys;

/// Who is acting, for the metadata of every event.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub tenant_id: TenantId,
    /// `agent`, `api_key`, `system` or `provider`.
    pub actor_type: &'static str,
    pub actor_id: Option<String>,
    pub request_id: Option<String>,
    /// The id of what caused this command (an inbound webhook record, another event…).
    pub causation_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The agent on whose behalf the command runs (an API key acts as its creator), with what
    /// services need to decide for it; none for the system and providers.
    pub agent: Option<AgentActor>,
    /// The activity-log action the command's events are recorded under, when not the one each
    /// event implies (a bulk action names its rows `conversation.bulk_<action>`).
    pub activity_action: Option<String>,
}

/// An agent acting through a command service: its identity and effective permissions, as plain
/// data (resolved by whoever authenticated it).
#[derive(Debug, Clone)]
pub struct AgentActor {
    /// The agent.
    pub id: Uuid,
    /// Its display name at the time (recorded as the sender of messages it queues).
    pub name: String,
    /// Its effective permission codes.
    pub permissions: Vec<Permission>,
    /// The client's IP address, when the agent acts through a request.
    pub ip: Option<String>,
    /// The client's `User-Agent`, when the agent acts through a request.
    pub user_agent: Option<String>,
}

impl AgentActor {
    /// Whether the agent holds `permission`.
    pub fn holds(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

impl CommandContext {
    /// A system actor (workers, expiry) in `tenant`.
    pub fn system(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            actor_type: "system",
            actor_id: None,
            request_id: None,
            causation_id: None,
            correlation_id: None,
            agent: None,
            activity_action: None,
        }
    }

    /// The metadata stored with every event of the command: the actor, the request, and for an
    /// agent its name and request origin (the activity projector's input).
    pub(super) fn metadata(&self) -> HashMap<String, String> {
        let mut metadata = HashMap::new();
        metadata.insert("tenant_id".to_owned(), self.tenant_id.to_string());
        metadata.insert("actor_type".to_owned(), self.actor_type.to_owned());
        metadata.insert("occurred_at".to_owned(), Utc::now().to_rfc3339());
        let agent = self.agent.as_ref();
        let agent_id = agent.map(|agent| agent.id.to_string());
        let agent_name = agent.map(|agent| agent.name.clone());
        for (key, value) in [
            ("actor_id", self.actor_id.as_ref()),
            ("request_id", self.request_id.as_ref()),
            ("causation_id", self.causation_id.as_ref()),
            ("correlation_id", self.correlation_id.as_ref()),
            (keys::AGENT_ID, agent_id.as_ref()),
            (keys::AGENT_NAME, agent_name.as_ref()),
            (keys::IP, agent.and_then(|agent| agent.ip.as_ref())),
            (
                keys::USER_AGENT,
                agent.and_then(|agent| agent.user_agent.as_ref()),
            ),
            (keys::ACTIVITY_ACTION, self.activity_action.as_ref()),
        ] {
            if let Some(value) = value {
                metadata.insert(key.to_owned(), value.clone());
            }
        }
        metadata
    }
}
