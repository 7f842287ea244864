//! Given/when/then tests of the conversation rules.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::kernel::message::{InboundContent, MessageType};

type Framework = TestFramework<Conversation>;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn ids() -> (Uuid, Uuid, Uuid, Uuid) {
    (
        Uuid::from_u128(1),
        Uuid::from_u128(2),
        Uuid::from_u128(3),
        Uuid::from_u128(4),
    )
}

fn open(at: DateTime<Utc>) -> OpenConversation {
    let (conversation, tenant, account, contact) = ids();
    OpenConversation {
        conversation_id: conversation,
        tenant_id: tenant,
        channel: Channel::Whatsapp,
        integration_account_id: account,
        contact_id: contact,
        division_id: None,
        at,
    }
}

fn opened(at: DateTime<Utc>) -> ConversationEvent {
    let o = open(at);
    ConversationEvent::ConversationOpened {
        conversation_id: o.conversation_id,
        tenant_id: o.tenant_id,
        channel: o.channel,
        integration_account_id: o.integration_account_id,
        contact_id: o.contact_id,
        division_id: None,
        opened_at: at,
    }
}

fn text(body: &str) -> InboundContent {
    InboundContent {
        message_type: MessageType::Text,
        content: Some(body.into()),
        media: None,
        reply_to_provider_id: None,
        data: None,
    }
}

fn inbound(n: u128, wamid: &str, sent_at: DateTime<Utc>) -> InboundMessage {
    InboundMessage {
        message_id: Uuid::from_u128(100 + n),
        provider_message_id: Some(wamid.into()),
        content: text("hi"),
        sender_name: Some("Sari".into()),
        sent_at,
        received_at: sent_at + Duration::seconds(2),
        raw: json!({"id": wamid}),
    }
}

fn received(message: &InboundMessage) -> ConversationEvent {
    ConversationEvent::InboundMessageReceived {
        message_id: message.message_id,
        provider_message_id: message.provider_message_id.clone(),
        content: message.content.clone(),
        sender_name: message.sender_name.clone(),
        sent_at: message.sent_at,
        received_at: message.received_at,
        raw: message.raw.clone(),
    }
}

fn agent() -> Sender {
    Sender {
        sender_type: "agent".into(),
        id: Some(Uuid::from_u128(9)),
        name: Some("Budi".into()),
    }
}

fn outbound(n: u128, message_type: MessageType, at: DateTime<Utc>) -> OutboundMessage {
    OutboundMessage {
        message_id: Uuid::from_u128(200 + n),
        sender: agent(),
        message_type,
        content: Some("hello".into()),
        media_url: None,
        filename: None,
        template: (message_type == MessageType::Template)
            .then(|| json!({"name": "welcome", "language": {"code": "en"}})),
        reply_to_message_id: None,
        subject: None,
        queued_at: at,
        window_hours: Some(24),
        auto_assign: None,
    }
}

fn queued(message: &OutboundMessage) -> ConversationEvent {
    ConversationEvent::OutboundMessageQueued {
        message_id: message.message_id,
        sender: message.sender.clone(),
        message_type: message.message_type,
        content: message.content.clone(),
        media_url: None,
        filename: None,
        template: message.template.clone(),
        reply_to_message_id: None,
        subject: None,
        message_tag: None,
        queued_at: message.queued_at,
    }
}

fn provider_status(wamid: &str, status: MessageStatus, at: DateTime<Utc>) -> ProviderStatus {
    ProviderStatus {
        provider_message_id: wamid.into(),
        status,
        occurred_at: at,
        error_code: None,
        error_title: None,
    }
}

fn status_changed(
    message_id: Uuid,
    wamid: &str,
    status: MessageStatus,
    at: DateTime<Utc>,
) -> ConversationEvent {
    ConversationEvent::OutboundStatusChanged {
        message_id,
        provider_message_id: wamid.into(),
        status,
        at,
        error_code: None,
        error_title: None,
    }
}

#[test]
fn the_first_inbound_message_opens_the_conversation() {
    let message = inbound(1, "wamid.A", t(0));
    Framework::with(())
        .given_no_previous_events()
        .when(ConversationCommand::ReceiveInbound {
            open: open(t(0)),
            message: message.clone(),
        })
        .then_expect_events(vec![opened(t(0)), received(&message)]);
}

#[test]
fn a_repeated_provider_message_has_no_second_effect() {
    let message = inbound(1, "wamid.A", t(0));
    Framework::with(())
        .given(vec![opened(t(0)), received(&message)])
        .when(ConversationCommand::ReceiveInbound {
            open: open(t(5)),
            message: inbound(2, "wamid.A", t(0)),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_inbound_message_reopens_a_resolved_conversation() {
    let first = inbound(1, "wamid.A", t(0));
    let second = inbound(2, "wamid.B", t(60));
    Framework::with(())
        .given(vec![
            opened(t(0)),
            received(&first),
            ConversationEvent::StatusChanged {
                from: ConversationStatus::Open,
                to: ConversationStatus::Resolved,
                resolved_at: Some(t(10)),
                at: t(10),
            },
        ])
        .when(ConversationCommand::ReceiveInbound {
            open: open(t(60)),
            message: second.clone(),
        })
        .then_expect_events(vec![
            ConversationEvent::ConversationReopened {
                at: second.received_at,
            },
            received(&second),
        ]);
}

#[test]
fn free_form_messages_need_the_window_templates_do_not() {
    let first = inbound(1, "wamid.A", t(0));
    let late = t(24 * 60 + 1);
    Framework::with(())
        .given(vec![opened(t(0)), received(&first)])
        .when(ConversationCommand::QueueOutbound(outbound(
            1,
            MessageType::Text,
            late,
        )))
        .then_expect_error(ConversationError::MessagingWindowClosed);
    let template = outbound(2, MessageType::Template, late);
    Framework::with(())
        .given(vec![opened(t(0)), received(&first)])
        .when(ConversationCommand::QueueOutbound(template.clone()))
        .then_expect_events(vec![queued(&template)]);
    let within = outbound(3, MessageType::Text, t(24 * 60 - 1));
    Framework::with(())
        .given(vec![opened(t(0)), received(&first)])
        .when(ConversationCommand::QueueOutbound(within.clone()))
        .then_expect_events(vec![queued(&within)]);
}

#[test]
fn the_window_counts_from_the_customers_send_time() {
    // Sent at t(0) but received hours later: the window still counts from t(0).
    let mut delayed = inbound(1, "wamid.A", t(0));
    delayed.received_at = t(20 * 60);
    Framework::with(())
        .given(vec![opened(t(0)), received(&delayed)])
        .when(ConversationCommand::QueueOutbound(outbound(
            1,
            MessageType::Text,
            t(24 * 60 + 5),
        )))
        .then_expect_error(ConversationError::MessagingWindowClosed);
}

#[test]
fn sending_auto_assigns_an_unassigned_conversation() {
    let first = inbound(1, "wamid.A", t(0));
    let mut message = outbound(1, MessageType::Text, t(1));
    message.auto_assign = Some(Uuid::from_u128(9));
    Framework::with(())
        .given(vec![opened(t(0)), received(&first)])
        .when(ConversationCommand::QueueOutbound(message.clone()))
        .then_expect_events(vec![
            queued(&message),
            ConversationEvent::AgentAssigned {
                from_agent_id: None,
                to_agent_id: Some(Uuid::from_u128(9)),
                at: t(1),
            },
        ]);
}

fn sent_history() -> (Vec<ConversationEvent>, Uuid) {
    let first = inbound(1, "wamid.A", t(0));
    let message = outbound(1, MessageType::Text, t(1));
    let id = message.message_id;
    (
        vec![
            opened(t(0)),
            received(&first),
            queued(&message),
            ConversationEvent::OutboundMessageSent {
                message_id: id,
                provider_message_id: "wamid.OUT".into(),
                at: t(2),
            },
        ],
        id,
    )
}

#[test]
fn statuses_never_move_backwards_and_delivered_may_be_skipped() {
    let (mut history, id) = sent_history();
    Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::RecordProviderStatus(provider_status(
            "wamid.OUT",
            MessageStatus::Read,
            t(3),
        )))
        .then_expect_events(vec![status_changed(
            id,
            "wamid.OUT",
            MessageStatus::Read,
            t(3),
        )]);
    history.push(status_changed(id, "wamid.OUT", MessageStatus::Read, t(3)));
    Framework::with(())
        .given(history)
        .when(ConversationCommand::RecordProviderStatus(provider_status(
            "wamid.OUT",
            MessageStatus::Delivered,
            t(2),
        )))
        .then_expect_events(vec![]);
}

#[test]
fn a_status_that_beats_the_send_receipt_is_applied_when_the_id_is_known() {
    let first = inbound(1, "wamid.A", t(0));
    let message = outbound(1, MessageType::Text, t(1));
    let id = message.message_id;
    let early = provider_status("wamid.OUT", MessageStatus::Delivered, t(2));
    Framework::with(())
        .given(vec![opened(t(0)), received(&first), queued(&message)])
        .when(ConversationCommand::RecordProviderStatus(early.clone()))
        .then_expect_events(vec![ConversationEvent::OutboundStatusDeferred {
            status: early.clone(),
        }]);
    Framework::with(())
        .given(vec![
            opened(t(0)),
            received(&first),
            queued(&message),
            ConversationEvent::OutboundStatusDeferred { status: early },
        ])
        .when(ConversationCommand::MarkSent {
            message_id: id,
            provider_message_id: "wamid.OUT".into(),
            at: t(3),
        })
        .then_expect_events(vec![
            ConversationEvent::OutboundMessageSent {
                message_id: id,
                provider_message_id: "wamid.OUT".into(),
                at: t(3),
            },
            status_changed(id, "wamid.OUT", MessageStatus::Delivered, t(2)),
        ]);
}

#[test]
fn only_failed_messages_are_retried() {
    let (history, id) = sent_history();
    Framework::with(())
        .given(history)
        .when(ConversationCommand::RetryOutbound {
            message_id: id,
            at: t(5),
        })
        .then_expect_error(ConversationError::MessageNotFailed);
}

#[test]
fn expired_is_only_set_by_expiry() {
    Framework::with(())
        .given(vec![opened(t(0))])
        .when(ConversationCommand::ChangeStatus {
            status: ConversationStatus::Expired,
            at: t(1),
        })
        .then_expect_error(ConversationError::ExpiredIsSystemOnly);
    Framework::with(())
        .given(vec![opened(t(0))])
        .when(ConversationCommand::Expire {
            at: t(1),
            cutoff: t(1),
        })
        .then_expect_events(vec![ConversationEvent::StatusChanged {
            from: ConversationStatus::Open,
            to: ConversationStatus::Expired,
            resolved_at: None,
            at: t(1),
        }]);
}

#[test]
fn taking_over_another_humans_conversation_needs_the_right() {
    let other = Uuid::from_u128(7);
    let me = Uuid::from_u128(8);
    let history = vec![
        opened(t(0)),
        ConversationEvent::AgentAssigned {
            from_agent_id: None,
            to_agent_id: Some(other),
            at: t(1),
        },
    ];
    Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::Takeover {
            transfer_id: Uuid::from_u128(50),
            agent_id: me,
            may_take_from_human: false,
            at: t(2),
        })
        .then_expect_error(ConversationError::AssignedToAnotherAgent);
    Framework::with(())
        .given(history)
        .when(ConversationCommand::Takeover {
            transfer_id: Uuid::from_u128(50),
            agent_id: me,
            may_take_from_human: true,
            at: t(2),
        })
        .then_expect_events(vec![ConversationEvent::ConversationTransferred {
            transfer_id: Uuid::from_u128(50),
            kind: TransferKind::Takeover,
            from_agent_id: Some(other),
            to_agent_id: Some(me),
            from_division_id: None,
            to_division_id: None,
            reason: None,
            transferred_by: me,
            at: t(2),
        }]);
}

#[test]
fn state_stays_small_however_long_the_conversation_is() {
    let mut state = Conversation::default();
    cqrs_es::Aggregate::apply(&mut state, opened(t(0)));
    for n in 0..20_000u128 {
        let at = t(n as i64);
        cqrs_es::Aggregate::apply(&mut state, received(&inbound(n, &format!("wamid.{n}"), at)));
    }
    let size = serde_json::to_vec(&state).unwrap().len();
    // Only recent provider ids are kept, however busy the conversation.
    assert!(state.seen.len() <= 192, "{} ids kept", state.seen.len());
    assert!(size < 100_000, "snapshot of {size} bytes");
}

#[test]
fn expiry_spares_a_conversation_the_customer_just_wrote_to() {
    let message = inbound(1, "wamid.A", t(100));
    Framework::with(())
        .given(vec![opened(t(0)), received(&message)])
        .when(ConversationCommand::Expire {
            at: t(101),
            cutoff: t(60),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_retried_message_takes_its_new_provider_id() {
    let (mut history, id) = sent_history();
    history.push(ConversationEvent::OutboundMessageFailed {
        message_id: id,
        error_code: Some(131026),
        reason: "x".into(),
        at: t(3),
    });
    history.push(ConversationEvent::OutboundMessageRetried {
        message_id: id,
        at: t(4),
    });
    Framework::with(())
        .given(history)
        .when(ConversationCommand::MarkSent {
            message_id: id,
            provider_message_id: "wamid.NEW".into(),
            at: t(5),
        })
        .then_expect_events(vec![ConversationEvent::OutboundMessageSent {
            message_id: id,
            provider_message_id: "wamid.NEW".into(),
            at: t(5),
        }]);
}

#[test]
fn a_late_failure_never_moves_a_delivered_message_backwards() {
    let (history, id) = sent_history();
    Framework::with(())
        .given(history)
        .when(ConversationCommand::MarkFailed {
            message_id: id,
            error_code: None,
            reason: "late".into(),
            at: t(9),
        })
        .then_expect_events(vec![]);
}

#[test]
fn statuses_for_a_conversation_that_never_opened_are_refused() {
    Framework::with(())
        .given_no_previous_events()
        .when(ConversationCommand::RecordProviderStatus(provider_status(
            "wamid.X",
            MessageStatus::Read,
            t(1),
        )))
        .then_expect_error(ConversationError::NotOpened);
}

mod messaging;
