//! The NATS relay: every event reaches JetStream once, in order, with its dedupe id.

use std::time::Duration;

use futures::StreamExt;
use omnistream_projections::log::relay::{stream_name, NatsRelay, RELAY_CHECKPOINT};
use omnistream_tests::fake_meta::whatsapp_text_webhook;
use omnistream_tests::nats_url;
use serde_json::Value;

use crate::whatsapp::{spine_with, Spine};

#[tokio::test]
async fn events_are_published_to_jetstream_once_with_their_dedupe_ids() {
    let prefix = format!("relay_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let configured = prefix.clone();
    let Spine { app, admin, .. } = spine_with("300000000000001", move |config| {
        config.nats_prefix = configured
    })
    .await;
    let webhook = whatsapp_text_webhook(
        "300000000000001",
        "62800081",
        "Fajar",
        "wamid.R1",
        "via nats",
        chrono::Utc::now().timestamp(),
    );
    app.post_meta_webhook(&webhook).await;

    let client = async_nats::connect(nats_url()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let stream = loop {
        if let Ok(stream) = jetstream.get_stream(stream_name(&prefix)).await {
            break stream;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay never created its stream"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: format!("{prefix}.events.{}.>", admin.organization_id),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut seen: Vec<(String, Value, String)> = Vec::new();
    while !seen
        .iter()
        .any(|(_, body, _)| body["event_type"] == "InboundMessageReceived")
    {
        let message = tokio::time::timeout_at(deadline, messages.next())
            .await
            .expect("published in time")
            .unwrap()
            .unwrap();
        let msg_id = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&message.payload).unwrap();
        seen.push((message.subject.to_string(), body, msg_id));
        message.ack().await.unwrap();
    }
    let (subject, body, msg_id) = seen.last().unwrap();
    assert_eq!(
        subject,
        &format!(
            "{prefix}.events.{}.Conversation.InboundMessageReceived",
            admin.organization_id
        )
    );
    assert_eq!(
        msg_id,
        &format!(
            "Conversation:{}:{}",
            body["aggregate_id"].as_str().unwrap(),
            body["sequence"]
        )
    );
    assert_eq!(body["tenant_id"], admin.organization_id.as_str());
    let order: Vec<&str> = seen
        .iter()
        .map(|(_, body, _)| body["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "ContactCreated",
            "ConversationOpened",
            "InboundMessageReceived"
        ],
        "in log order"
    );

    // Re-publishing after a lost checkpoint (a crash between ack and checkpoint) is deduplicated.
    let wait_for_checkpoint = || async {
        loop {
            let applied = app.events_applied(RELAY_CHECKPOINT).await;
            if applied.is_some_and(|n| n >= 2) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait_for_checkpoint())
        .await
        .expect("checkpoint advanced");
    let before = stream.clone().info().await.unwrap().state.messages;
    app.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1")
        .bind(RELAY_CHECKPOINT)
        .execute(&app.pool)
        .await
        .unwrap();
    let relay = NatsRelay::new(app.pool.clone(), client.clone(), &prefix).unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let republished = relay.relay_batch(&mut conn).await.unwrap();
    assert!(republished >= 2);
    let after = stream.clone().info().await.unwrap().state.messages;
    assert_eq!(after, before, "JetStream dropped the duplicates");
    jetstream.delete_stream(stream_name(&prefix)).await.unwrap();
}
