//! Executing aggregate commands: stream ids, event metadata, and transparent retries of
//! optimistic-concurrency conflicts (two writers on one stream both succeed, in turn).

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use cqrs_es::{Aggregate, AggregateError};
use omnistream_domain::contact::Contact;
use omnistream_domain::conversation::Conversation;
use omnistream_domain::{Channel, Permission, StreamId, TenantId};
use postgres_es::{postgres_snapshot_cqrs, PostgresCqrs};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::metadata_keys as keys;

/// Events between two snapshots: loading a stream reads one snapshot and at most this many
/// events, however long the stream is.
const SNAPSHOT_EVERY: usize = 100;
/// Attempts at a command that keeps meeting concurrent writers.
const MAX_ATTEMPTS: u32 = 20;

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
    fn metadata(&self) -> HashMap<String, String> {
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
            (keys::USER_AGENT, agent.and_then(|agent| agent.user_agent.as_ref())),
            (keys::ACTIVITY_ACTION, self.activity_action.as_ref()),
        ] {
            if let Some(value) = value {
                metadata.insert(key.to_owned(), value.clone());
            }
        }
        metadata
    }
}

/// Why a command did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// A business rule refused it.
    #[error(transparent)]
    Rule(E),
    /// Still conflicting after every retry.
    #[error("too many concurrent changes to this stream")]
    Contention,
    /// The event store failed.
    #[error("event store error: {0}")]
    Store(String),
}

/// Runs one aggregate's commands against the PostgreSQL event store.
pub struct AggregateService<A: Aggregate> {
    cqrs: std::sync::Arc<PostgresCqrs<A>>,
}

impl<A: Aggregate> Clone for AggregateService<A> {
    fn clone(&self) -> Self {
        Self {
            cqrs: self.cqrs.clone(),
        }
    }
}

/// Commands of conversations.
pub type ConversationService = AggregateService<Conversation>;
/// Commands of contacts.
pub type ContactService = AggregateService<Contact>;

impl<A> AggregateService<A>
where
    A: Aggregate<Services = ()> + 'static,
    A::Command: Clone,
    A::Error: std::error::Error + 'static,
{
    /// A service over `pool` (snapshots every 100 events).
    pub fn new(pool: PgPool) -> Self {
        Self {
            cqrs: std::sync::Arc::new(postgres_snapshot_cqrs(pool, vec![], SNAPSHOT_EVERY, ())),
        }
    }

    /// Executes `command` on aggregate `id` of the context's tenant, retrying
    /// optimistic-concurrency conflicts with a short jittered backoff.
    #[tracing::instrument(skip_all, fields(aggregate = A::TYPE, id = %id))]
    pub async fn execute(
        &self,
        context: &CommandContext,
        id: Uuid,
        command: A::Command,
    ) -> Result<(), CommandError<A::Error>> {
        let stream = StreamId::new(context.tenant_id, id).to_string();
        for attempt in 0..MAX_ATTEMPTS {
            match self
                .cqrs
                .execute_with_metadata(&stream, command.clone(), context.metadata())
                .await
            {
                Ok(()) => return Ok(()),
                Err(AggregateError::UserError(rule)) => return Err(CommandError::Rule(rule)),
                Err(AggregateError::AggregateConflict) => {
                    let jitter =
                        u64::from(id.as_u128() as u8 % 7) + u64::from(rand::random::<u8>() % 5);
                    tokio::time::sleep(Duration::from_millis(2 + u64::from(attempt) * 3 + jitter))
                        .await;
                }
                Err(other) => return Err(CommandError::Store(other.to_string())),
            }
        }
        Err(CommandError::Contention)
    }
}

/// Deterministic identifiers: the same facts always give the same id, so concurrent webhooks
/// for a new customer agree on one contact and one conversation without a lookup race.
pub mod ids {
    use super::*;

    const NAMESPACE: Uuid = Uuid::from_u128(0x6f6d_6e69_7374_7265_616d_0000_0000_0001);

    /// The contact with `external_id` (wa_id, IGSID, PSID, email) on `channel`.
    pub fn contact(tenant: TenantId, channel: Channel, external_id: &str) -> Uuid {
        Uuid::new_v5(
            &NAMESPACE,
            format!("contact:{tenant}:{channel}:{external_id}").as_bytes(),
        )
    }

    /// The one conversation of `contact` on integration account `account`.
    pub fn conversation(tenant: TenantId, account: Uuid, contact: Uuid) -> Uuid {
        Uuid::new_v5(
            &NAMESPACE,
            format!("conversation:{tenant}:{account}:{contact}").as_bytes(),
        )
    }

    /// The email conversation of `contact` on `account` whose thread starts at the message
    /// `thread_root` (the first of its `References`, else what it replies to, else itself):
    /// email has one conversation per thread, not per contact.
    pub fn email_conversation(
        tenant: TenantId,
        account: Uuid,
        contact: Uuid,
        thread_root: &str,
    ) -> Uuid {
        Uuid::new_v5(
            &NAMESPACE,
            format!("email-conversation:{tenant}:{account}:{contact}:{thread_root}").as_bytes(),
        )
    }

    /// The message a provider delivered with id `provider_message_id` on `account`.
    pub fn inbound_message(tenant: TenantId, account: Uuid, provider_message_id: &str) -> Uuid {
        Uuid::new_v5(
            &NAMESPACE,
            format!("message:{tenant}:{account}:{provider_message_id}").as_bytes(),
        )
    }
}
