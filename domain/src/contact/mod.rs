//! The Contact aggregate: a customer, identified on a channel, edited by agents.
//!
//! Every change is an event, so a contact's history is as auditable as a conversation's, and the
//! contacts read model can be rebuilt from the log like any other.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::kernel::channel::Channel;

/// How often a returning customer's `last_contacted_at` is recorded (at most once per window).
const SEEN_GRANULARITY_MINUTES: i64 = 5;

/// A field an agent changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ContactChanges {
    pub name: Option<String>,
    /// `Some(None)` clears.
    pub email: Option<Option<String>>,
    pub phone_number: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub custom_attributes: Option<Value>,
}

impl ContactChanges {
    fn is_empty(&self) -> bool {
        self == &ContactChanges::default()
    }
}

/// Everything one can ask of a contact.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactCommand {
    /// The customer showed up on a channel: create the contact, follow its profile name (until an
    /// agent renames it), note when it was last in touch.
    RecordIdentity {
        tenant_id: Uuid,
        channel: Channel,
        external_id: String,
        profile_name: Option<String>,
        phone_number: Option<String>,
        at: DateTime<Utc>,
    },
    /// An agent edited the contact.
    Update {
        changes: ContactChanges,
        at: DateTime<Utc>,
    },
}

/// Everything that can happen to a contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ContactEvent {
    ContactCreated {
        tenant_id: Uuid,
        channel: Channel,
        external_id: String,
        name: String,
        phone_number: Option<String>,
        at: DateTime<Utc>,
    },
    ContactProfileNameChanged {
        name: String,
        at: DateTime<Utc>,
    },
    ContactSeen {
        at: DateTime<Utc>,
    },
    ContactUpdated {
        changes: ContactChanges,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ContactEvent {
    fn event_type(&self) -> String {
        match self {
            ContactEvent::ContactCreated { .. } => "ContactCreated",
            ContactEvent::ContactProfileNameChanged { .. } => "ContactProfileNameChanged",
            ContactEvent::ContactSeen { .. } => "ContactSeen",
            ContactEvent::ContactUpdated { .. } => "ContactUpdated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a contact command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("contact not found")]
    NotFound,
}

/// The aggregate's (small) state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    created: bool,
    name: String,
    /// The name still follows the channel profile (no agent has renamed the contact).
    name_follows_profile: bool,
    last_seen: Option<DateTime<Utc>>,
}

/// The aggregate type of contact streams in the event log.
pub const AGGREGATE_TYPE: &str = "Contact";

impl Aggregate for Contact {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = ContactCommand;
    type Event = ContactEvent;
    type Error = ContactError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in decide(self, command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ContactEvent::ContactCreated { name, at, .. } => {
                self.created = true;
                self.name = name;
                self.name_follows_profile = true;
                self.last_seen = Some(at);
            }
            ContactEvent::ContactProfileNameChanged { name, .. } => self.name = name,
            ContactEvent::ContactSeen { at } => self.last_seen = Some(at),
            ContactEvent::ContactUpdated { changes, .. } => {
                if let Some(name) = changes.name {
                    self.name = name;
                    self.name_follows_profile = false;
                }
            }
        }
    }
}

fn decide(state: &Contact, command: ContactCommand) -> Result<Vec<ContactEvent>, ContactError> {
    Ok(match command {
        ContactCommand::RecordIdentity {
            tenant_id,
            channel,
            external_id,
            profile_name,
            phone_number,
            at,
        } => {
            if !state.created {
                let name = profile_name.clone().unwrap_or_else(|| external_id.clone());
                return Ok(vec![ContactEvent::ContactCreated {
                    tenant_id,
                    channel,
                    external_id,
                    name,
                    phone_number,
                    at,
                }]);
            }
            let mut events = Vec::new();
            if let Some(profile) =
                profile_name.filter(|p| state.name_follows_profile && *p != state.name)
            {
                events.push(ContactEvent::ContactProfileNameChanged { name: profile, at });
            }
            let stale = state
                .last_seen
                .is_none_or(|seen| at - seen >= Duration::minutes(SEEN_GRANULARITY_MINUTES));
            if stale {
                events.push(ContactEvent::ContactSeen { at });
            }
            events
        }
        ContactCommand::Update { changes, at } => {
            if !state.created {
                return Err(ContactError::NotFound);
            }
            if changes.is_empty() {
                vec![]
            } else {
                vec![ContactEvent::ContactUpdated { changes, at }]
            }
        }
    })
}

/// The public events (contract §15) of one stored contact event.
pub fn public_events(contact_id: Uuid, event: &ContactEvent) -> Vec<(&'static str, Value)> {
    match event {
        ContactEvent::ContactCreated {
            channel,
            external_id,
            name,
            phone_number,
            at,
            ..
        } => vec![(
            "contact.created",
            serde_json::json!({"contact_id": contact_id, "channel": channel, "external_id": external_id, "name": name,
                               "phone_number": phone_number, "created_at": at}),
        )],
        ContactEvent::ContactProfileNameChanged { name, at } => {
            vec![(
                "contact.updated",
                serde_json::json!({"contact_id": contact_id, "changes": {"name": name}, "at": at}),
            )]
        }
        ContactEvent::ContactUpdated { changes, at } => {
            vec![(
                "contact.updated",
                serde_json::json!({"contact_id": contact_id, "changes": changes, "at": at}),
            )]
        }
        ContactEvent::ContactSeen { .. } => vec![],
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;

    use super::*;

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    fn identity(name: Option<&str>, at: DateTime<Utc>) -> ContactCommand {
        ContactCommand::RecordIdentity {
            tenant_id: Uuid::from_u128(1),
            channel: Channel::Whatsapp,
            external_id: "62811".into(),
            profile_name: name.map(str::to_owned),
            phone_number: Some("62811".into()),
            at,
        }
    }

    fn created(name: &str) -> ContactEvent {
        ContactEvent::ContactCreated {
            tenant_id: Uuid::from_u128(1),
            channel: Channel::Whatsapp,
            external_id: "62811".into(),
            name: name.into(),
            phone_number: Some("62811".into()),
            at: t(0),
        }
    }

    #[test]
    fn the_first_sighting_creates_the_contact_with_its_profile_name() {
        TestFramework::<Contact>::with(())
            .given_no_previous_events()
            .when(identity(Some("Sari"), t(0)))
            .then_expect_events(vec![created("Sari")]);
        TestFramework::<Contact>::with(())
            .given_no_previous_events()
            .when(identity(None, t(0)))
            .then_expect_events(vec![created("62811")]);
    }

    #[test]
    fn the_name_follows_the_profile_until_an_agent_renames_it() {
        TestFramework::<Contact>::with(())
            .given(vec![created("Sari")])
            .when(identity(Some("Sari W."), t(1)))
            .then_expect_events(vec![ContactEvent::ContactProfileNameChanged {
                name: "Sari W.".into(),
                at: t(1),
            }]);
        let renamed = ContactEvent::ContactUpdated {
            changes: ContactChanges {
                name: Some("Ibu Sari".into()),
                ..Default::default()
            },
            at: t(1),
        };
        TestFramework::<Contact>::with(())
            .given(vec![created("Sari"), renamed])
            .when(identity(Some("Sari W."), t(2)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn returning_customers_are_seen_at_most_once_per_window() {
        TestFramework::<Contact>::with(())
            .given(vec![created("Sari")])
            .when(identity(Some("Sari"), t(2)))
            .then_expect_events(vec![]);
        TestFramework::<Contact>::with(())
            .given(vec![created("Sari")])
            .when(identity(Some("Sari"), t(6)))
            .then_expect_events(vec![ContactEvent::ContactSeen { at: t(6) }]);
    }

    #[test]
    fn only_existing_contacts_are_updated() {
        TestFramework::<Contact>::with(())
            .given_no_previous_events()
            .when(ContactCommand::Update {
                changes: ContactChanges {
                    name: Some("x".into()),
                    ..Default::default()
                },
                at: t(0),
            })
            .then_expect_error(ContactError::NotFound);
    }
}
