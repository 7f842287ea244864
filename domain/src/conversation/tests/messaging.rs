//! Given/when/then tests of the Messenger and Instagram rules: the `HUMAN_AGENT` extension of the
//! window, echoes of messages sent from other apps, and watermark or message read receipts.

use super::*;
use crate::kernel::message::{MessageTag, ReceiptBound};

fn messenger_opened(at: DateTime<Utc>) -> ConversationEvent {
    let mut event = opened(at);
    if let ConversationEvent::ConversationOpened { channel, .. } = &mut event {
        *channel = Channel::Messenger;
    }
    event
}

fn queued_with_tag(message: &OutboundMessage, tag: Option<MessageTag>) -> ConversationEvent {
    let mut event = queued(message);
    if let ConversationEvent::OutboundMessageQueued { message_tag, .. } = &mut event {
        *message_tag = tag;
    }
    event
}

const HOUR: i64 = 60;

#[test]
fn a_human_agent_may_answer_for_seven_days_with_the_human_agent_tag() {
    let first = inbound(1, "m_A", t(0));
    let history = vec![messenger_opened(t(0)), received(&first)];
    let within = outbound(1, MessageType::Text, t(23 * HOUR));
    Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::QueueOutbound(within.clone()))
        .then_expect_events(vec![queued_with_tag(&within, None)]);
    let two_days = outbound(2, MessageType::Text, t(48 * HOUR));
    Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::QueueOutbound(two_days.clone()))
        .then_expect_events(vec![queued_with_tag(
            &two_days,
            Some(MessageTag::HumanAgent),
        )]);
    let eight_days = outbound(3, MessageType::Text, t(8 * 24 * HOUR));
    Framework::with(())
        .given(history)
        .when(ConversationCommand::QueueOutbound(eight_days))
        .then_expect_error(ConversationError::MessagingWindowClosed);
}

#[test]
fn ai_and_automation_messages_and_whatsapp_get_no_extension() {
    let first = inbound(1, "m_A", t(0));
    let mut from_ai = outbound(1, MessageType::Text, t(30 * HOUR));
    from_ai.sender.sender_type = "ai".into();
    Framework::with(())
        .given(vec![messenger_opened(t(0)), received(&first)])
        .when(ConversationCommand::QueueOutbound(from_ai))
        .then_expect_error(ConversationError::MessagingWindowClosed);
    Framework::with(())
        .given(vec![opened(t(0)), received(&first)])
        .when(ConversationCommand::QueueOutbound(outbound(
            2,
            MessageType::Text,
            t(30 * HOUR),
        )))
        .then_expect_error(ConversationError::MessagingWindowClosed);
}

#[test]
fn a_shorter_configured_window_still_closes_before_24_hours() {
    let first = inbound(1, "m_A", t(0));
    let mut message = outbound(1, MessageType::Text, t(13 * HOUR));
    message.window_hours = Some(12);
    Framework::with(())
        .given(vec![messenger_opened(t(0)), received(&first)])
        .when(ConversationCommand::QueueOutbound(message))
        .then_expect_error(ConversationError::MessagingWindowClosed);
}

fn echo(mid: &str, at: DateTime<Utc>) -> EchoedMessage {
    EchoedMessage {
        message_id: Uuid::from_u128(700),
        provider_message_id: mid.into(),
        content: text("sent from the Instagram app"),
        sent_at: at,
        raw: json!({"mid": mid}),
    }
}

fn echoed(message: &EchoedMessage) -> ConversationEvent {
    ConversationEvent::OutboundMessageEchoed {
        message_id: message.message_id,
        provider_message_id: message.provider_message_id.clone(),
        content: message.content.clone(),
        sent_at: message.sent_at,
        raw: message.raw.clone(),
    }
}

#[test]
fn echoes_of_other_apps_are_recorded_once_and_echoes_of_our_sends_not_at_all() {
    let (history, _) = sent_history();
    let other = echo("m_ECHO", t(5));
    Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::RecordEcho {
            open: open(t(5)),
            message: other.clone(),
        })
        .then_expect_events(vec![echoed(&other)]);
    let mut repeated = history.clone();
    repeated.push(echoed(&other));
    Framework::with(())
        .given(repeated)
        .when(ConversationCommand::RecordEcho {
            open: open(t(6)),
            message: other,
        })
        .then_expect_events(vec![]);
    Framework::with(())
        .given(history)
        .when(ConversationCommand::RecordEcho {
            open: open(t(6)),
            message: echo("wamid.OUT", t(2)),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_echo_opens_a_conversation_the_business_started_elsewhere() {
    let first = echo("m_FIRST", t(0));
    Framework::with(())
        .given_no_previous_events()
        .when(ConversationCommand::RecordEcho {
            open: open(t(0)),
            message: first.clone(),
        })
        .then_expect_events(vec![opened(t(0)), echoed(&first)]);
}

#[test]
fn a_watermark_reads_every_message_sent_up_to_it() {
    let (mut history, id) = sent_history();
    let later = outbound(2, MessageType::Text, t(10));
    history.push(queued(&later));
    history.push(ConversationEvent::OutboundMessageSent {
        message_id: later.message_id,
        provider_message_id: "m_LATER".into(),
        at: t(11),
    });
    Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::RecordReceipt {
            status: MessageStatus::Read,
            up_to: ReceiptBound::Watermark(t(5)),
            occurred_at: t(6),
        })
        .then_expect_events(vec![status_changed(
            id,
            "wamid.OUT",
            MessageStatus::Read,
            t(6),
        )]);
    // Naming the later message covers both; unknown messages cover nothing.
    let events = Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::RecordReceipt {
            status: MessageStatus::Read,
            up_to: ReceiptBound::Message("m_LATER".into()),
            occurred_at: t(12),
        })
        .inspect_result()
        .expect("a receipt is accepted");
    assert_eq!(events.len(), 2, "{events:?}");
    Framework::with(())
        .given(history)
        .when(ConversationCommand::RecordReceipt {
            status: MessageStatus::Read,
            up_to: ReceiptBound::Message("m_UNKNOWN".into()),
            occurred_at: t(12),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_delivery_receipt_does_not_undo_a_read() {
    let (mut history, id) = sent_history();
    history.push(status_changed(id, "wamid.OUT", MessageStatus::Read, t(3)));
    Framework::with(())
        .given(history)
        .when(ConversationCommand::RecordReceipt {
            status: MessageStatus::Delivered,
            up_to: ReceiptBound::Watermark(t(5)),
            occurred_at: t(6),
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_echo_that_overtakes_our_sends_answer_is_withdrawn_when_the_answer_comes() {
    let first = inbound(1, "m_A", t(0));
    let ours = outbound(1, MessageType::Text, t(1));
    let early_echo = echo("m_OURS", t(2));
    let history = vec![
        messenger_opened(t(0)),
        received(&first),
        queued(&ours),
        echoed(&early_echo),
    ];
    Framework::with(())
        .given(history.clone())
        .when(ConversationCommand::MarkSent {
            message_id: ours.message_id,
            provider_message_id: "m_OURS".into(),
            at: t(3),
        })
        .then_expect_events(vec![
            ConversationEvent::OutboundMessageSent {
                message_id: ours.message_id,
                provider_message_id: "m_OURS".into(),
                at: t(3),
            },
            ConversationEvent::EchoMatched {
                echo_message_id: early_echo.message_id,
                message_id: ours.message_id,
            },
        ]);
    // Afterwards receipts name our message, and the echo is not recorded again.
    let mut merged = history;
    merged.push(ConversationEvent::OutboundMessageSent {
        message_id: ours.message_id,
        provider_message_id: "m_OURS".into(),
        at: t(3),
    });
    merged.push(ConversationEvent::EchoMatched {
        echo_message_id: early_echo.message_id,
        message_id: ours.message_id,
    });
    Framework::with(())
        .given(merged.clone())
        .when(ConversationCommand::RecordProviderStatus(provider_status(
            "m_OURS",
            MessageStatus::Read,
            t(4),
        )))
        .then_expect_events(vec![status_changed(
            ours.message_id,
            "m_OURS",
            MessageStatus::Read,
            t(4),
        )]);
    Framework::with(())
        .given(merged)
        .when(ConversationCommand::RecordEcho {
            open: open(t(5)),
            message: early_echo,
        })
        .then_expect_events(vec![]);
}
