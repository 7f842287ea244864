//! Executing aggregate commands: stream ids, event metadata, and transparent retries of
//! optimistic-concurrency conflicts (two writers on one stream both succeed, in turn).

use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use omnistream_domain::contact::Contact;
use omnistream_domain::conversation::Conversation;
use omnistream_domain::StreamId;
use postgres_es::{postgres_snapshot_cqrs, PostgresCqrs};
use sqlx::PgPool;
use uuid::Uuid;

use super::{CommandContext, UnitOfWork};
use crate::infra::wakeup::{self, Announcer};

/// Events between two snapshots: loading a stream reads one snapshot and at most this many
/// events, however long the stream is.
const SNAPSHOT_EVERY: usize = 100;
/// Attempts at a command that keeps meeting concurrent writers.
const MAX_ATTEMPTS: u32 = 20;

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

/// Runs one aggregate's commands against the PostgreSQL event store: each command commits on
/// its own, or (a service [`in_unit`](AggregateService::in_unit)) appends to a [`UnitOfWork`]
/// that its owner commits.
pub struct AggregateService<A: Aggregate> {
    engine: Engine<A>,
    /// Announces appended events to the projectors of every process (none in a unit: its
    /// owner announces once it has committed).
    announcer: Option<Announcer>,
}

enum Engine<A: Aggregate> {
    Direct(Arc<PostgresCqrs<A>>),
    Unit(Arc<CqrsFramework<A, PersistedEventStore<UnitOfWork, A>>>),
}

impl<A: Aggregate> Clone for AggregateService<A> {
    fn clone(&self) -> Self {
        let engine = match &self.engine {
            Engine::Direct(cqrs) => Engine::Direct(cqrs.clone()),
            Engine::Unit(cqrs) => Engine::Unit(cqrs.clone()),
        };
        Self {
            engine,
            announcer: self.announcer.clone(),
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
            engine: Engine::Direct(Arc::new(postgres_snapshot_cqrs(
                pool,
                vec![],
                SNAPSHOT_EVERY,
                (),
            ))),
            announcer: None,
        }
    }

    /// This service, announcing each command's events once committed (see [`Announcer`]), so
    /// that the projectors and stream tailers of every process wake instead of polling.
    pub fn announcing(self, announcer: Announcer) -> Self {
        Self {
            announcer: Some(announcer),
            ..self
        }
    }

    /// A service whose commands append to `unit` instead of committing each.
    pub fn in_unit(unit: &UnitOfWork) -> Self {
        let store = PersistedEventStore::new_snapshot_store(unit.clone(), SNAPSHOT_EVERY);
        Self {
            engine: Engine::Unit(Arc::new(CqrsFramework::new(store, vec![], ()))),
            announcer: None,
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
            let executed = match &self.engine {
                Engine::Direct(cqrs) => {
                    cqrs.execute_with_metadata(&stream, command.clone(), context.metadata())
                        .await
                }
                Engine::Unit(cqrs) => {
                    cqrs.execute_with_metadata(&stream, command.clone(), context.metadata())
                        .await
                }
            };
            match executed {
                Ok(()) => {
                    if let Some(announcer) = &self.announcer {
                        announcer.announce(wakeup::EVENTS);
                    }
                    return Ok(());
                }
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
