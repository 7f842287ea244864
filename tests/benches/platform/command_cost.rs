//! B3: a command on a conversation that already holds 10,000 messages against one on a new
//! conversation, through the real event store.

use std::time::Instant;

use serde_json::json;

use crate::load::Section;

/// Mean milliseconds per `ReceiveInbound` on a conversation already holding 10,000 messages and
/// on a new one (300 commands each, sequential, through the real event store).
async fn command_cost(pool: &sqlx::PgPool) -> (f64, f64) {
    use omnistream_commands::store::{CommandContext, ConversationService};
    use omnistream_domain::conversation::{ConversationCommand, InboundMessage, OpenConversation};
    use omnistream_domain::{Channel, InboundContent, MessageType, TenantId};

    let service = ConversationService::new(pool.clone());
    let tenant = TenantId::new();
    let context = CommandContext::system(tenant);
    let command = |conversation: uuid::Uuid, n: usize| ConversationCommand::ReceiveInbound {
        open: OpenConversation {
            conversation_id: conversation,
            tenant_id: tenant.as_uuid(),
            channel: Channel::Whatsapp,
            integration_account_id: uuid::Uuid::nil(),
            contact_id: uuid::Uuid::nil(),
            division_id: None,
            at: chrono::Utc::now(),
        },
        message: InboundMessage {
            message_id: uuid::Uuid::new_v4(),
            provider_message_id: Some(format!("wamid.{conversation}.{n}")),
            content: InboundContent {
                message_type: MessageType::Text,
                content: Some(format!("message {n}")),
                media: None,
                reply_to_provider_id: None,
                data: None,
            },
            sender_name: None,
            sent_at: chrono::Utc::now(),
            received_at: chrono::Utc::now(),
            raw: serde_json::Value::Null,
        },
    };
    let big = uuid::Uuid::new_v4();
    for n in 0..10_000 {
        service
            .execute(&context, big, command(big, n))
            .await
            .unwrap();
    }
    let measure = |conversation: uuid::Uuid, from: usize| {
        let service = service.clone();
        let context = context.clone();
        let command = &command;
        async move {
            let started = Instant::now();
            for n in from..from + 300 {
                service
                    .execute(&context, conversation, command(conversation, n))
                    .await
                    .unwrap();
            }
            started.elapsed().as_secs_f64() * 1000.0 / 300.0
        }
    };
    let fresh = uuid::Uuid::new_v4();
    let new_ms = measure(fresh, 0).await;
    let big_ms = measure(big, 10_000).await;
    (big_ms, new_ms)
}

pub async fn run(pool: &sqlx::PgPool) -> Section {
    let (big_ms, new_ms) = command_cost(pool).await;
    let ratio = big_ms / new_ms;
    eprintln!("B3: {big_ms:.3} ms vs {new_ms:.3} ms per command (ratio {ratio:.2})");
    Section {
        key: "b3_command_cost",
        json: json!({"ms_per_command_at_10000_messages": big_ms, "ms_per_command_new": new_ms, "ratio": ratio}),
        markdown: format!(
            "## B3: inbound message into a conversation holding 10,000 messages vs. a new one\n\n\
             | at 10,000 messages (ms/command) | new conversation (ms/command) | ratio (target ≤ 1.1) |\n|---|---|---|\n\
             | {big_ms:.3} | {new_ms:.3} | {ratio:.2} |\n"
        ),
    }
}
