//! Fault tests: concurrency and crashes never lose or duplicate an acknowledged write.

use std::time::Duration;

use chrono::Utc;
use omnistream_commands::service::{CommandContext, ConversationService};
use omnistream_domain::conversation::{ConversationCommand, InboundMessage, OpenConversation};
use omnistream_domain::{Channel, InboundContent, MessageType, TenantId};
use omnistream_gateway::db;
use omnistream_tests::create_test_database;
use uuid::Uuid;

#[tokio::test]
async fn fifty_concurrent_writers_on_one_conversation_lose_nothing() {
    let url = create_test_database().await;
    let pool = db::connect(&url, 20, Duration::from_secs(10))
        .await
        .unwrap();
    db::migrate(&pool).await.unwrap();
    let service = ConversationService::new(pool.clone());
    let tenant = TenantId::new();
    let conversation = Uuid::new_v4();
    let open = OpenConversation {
        conversation_id: conversation,
        tenant_id: tenant.as_uuid(),
        channel: Channel::Whatsapp,
        integration_account_id: Uuid::new_v4(),
        contact_id: Uuid::new_v4(),
        division_id: None,
        at: Utc::now(),
    };
    let writers = (0..50).map(|n| {
        let (service, open) = (service.clone(), open.clone());
        tokio::spawn(async move {
            let message = InboundMessage {
                message_id: Uuid::new_v4(),
                provider_message_id: Some(format!("wamid.concurrent.{n}")),
                content: InboundContent {
                    message_type: MessageType::Text,
                    content: Some(format!("writer {n}")),
                    media: None,
                    reply_to_provider_id: None,
                    data: None,
                },
                sender_name: None,
                sent_at: Utc::now(),
                received_at: Utc::now(),
                raw: serde_json::Value::Null,
            };
            service
                .execute(
                    &CommandContext::system(tenant),
                    conversation,
                    ConversationCommand::ReceiveInbound { open, message },
                )
                .await
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer
            .unwrap()
            .expect("every writer succeeds: conflicts are retried by the server");
    }
    let stream = format!("{tenant}:{conversation}");
    let sequences: Vec<i64> =
        sqlx::query_scalar("SELECT sequence FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(&stream)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        sequences,
        (1..=51).collect::<Vec<i64>>(),
        "opened once, 50 messages, a contiguous sequence"
    );
}
