//! Wake-ups: PostgreSQL tells every listening process when a queue gets work, once per
//! committed batch: an intake batch of stored webhooks, a processor round's events, a
//! projector batch of outbound jobs. Stages wait for work instead of sleeping a fixed interval.
//! (A NOTIFY per ack or per command would serialise commits: migration 0016.)

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
async fn a_stored_webhook_its_processed_round_and_a_queued_reply_wake_another_process() {
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
    woken(&mut inbound, "a stored webhook").await;
    woken(&mut events, "the processor's round").await;

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
    stop.cancel();
}
