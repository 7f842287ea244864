//! Wake-ups: PostgreSQL tells every listening process when the outbound queue gets work (a
//! projector batch at a time), so senders wait for work instead of sleeping a fixed interval.
//! Stored webhooks and new events notify nobody: a NOTIFY per ack or per command serialises
//! commits (migration 0016).

use std::time::Duration;

use omnistream_commands::infra::wakeup::{self, Wakeup, Wakeups};
use omnistream_tests::fake_meta::whatsapp_text_webhook;
use reqwest::StatusCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::whatsapp::{spine, Spine};

/// Waits for `wakeup` with a fallback far beyond the test's patience: only a notification
/// ends the wait in time.
async fn woken(wakeup: &mut Wakeup, what: &str) {
    tokio::time::timeout(
        Duration::from_secs(60),
        wakeup.wait(Duration::from_secs(24 * 3600)),
    )
    .await
    .unwrap_or_else(|_| panic!("no wake-up for {what}"));
}

#[tokio::test]
async fn a_queued_reply_wakes_the_senders_and_acks_and_commands_notify_nobody() {
    let Spine { app, admin, .. } = spine("700000000000003").await;
    let stop = CancellationToken::new();
    let wakeups = Wakeups::listen(app.pool.clone(), stop.clone()).await;
    let mut inbound = wakeups.subscribe(wakeup::INBOUND);
    let mut events = wakeups.subscribe(wakeup::EVENTS);
    let mut outbound = wakeups.subscribe(wakeup::OUTBOUND);

    let webhook = whatsapp_text_webhook(
        "700000000000003",
        "6281700004",
        "Customer",
        "wamid.W1",
        "wake up",
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(
        app.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK
    );

    let api = admin.client(&app);
    let inbox = app
        .eventually(&api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap();
    let reply = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"content": "hello"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    woken(&mut outbound, "a queued reply").await;
    // Whatever the senders' wake-up did, the webhook's ack and its commands raised nothing:
    // had they, these waits would return at once instead of after their fallback.
    let started = tokio::time::Instant::now();
    inbound.wait(Duration::from_millis(300)).await;
    events.wait(Duration::from_millis(300)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "acks and commands notify nobody"
    );
    stop.cancel();
}
