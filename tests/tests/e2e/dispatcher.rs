//! The webhook dispatcher's hand-over: a dispatcher that starts after another has stopped
//! resumes from the stream position the first committed with its fan-out, so no event is fanned
//! out twice or skipped, and the order holds across the hand-over.

use omnistream_gateway::app::Roles;
use omnistream_tests::fake_meta::whatsapp_text_webhook;
use omnistream_tests::webhook_receiver::Receiver;
use omnistream_tests::TestApp;

use crate::webhooks::{drop_stream, isolated_spine};
use crate::whatsapp::Spine;

const PHONE_NUMBER_ID: &str = "500000000000077";

async fn post_messages(app: &TestApp, range: std::ops::Range<usize>) {
    for n in range {
        let webhook = whatsapp_text_webhook(
            PHONE_NUMBER_ID,
            "62809077",
            "Hana",
            &format!("wamid.D{n}"),
            &format!("msg {n}"),
            chrono::Utc::now().timestamp(),
        );
        assert!(app.post_meta_webhook(&webhook).await.status().is_success());
    }
}

fn contents(received: &[omnistream_tests::webhook_receiver::Received]) -> Vec<String> {
    received
        .iter()
        .filter(|r| r.ok)
        .map(|r| r.body["data"]["content"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_new_dispatcher_resumes_where_the_last_committed_without_repeating_or_skipping() {
    let (Spine { app, admin, .. }, prefix) = isolated_spine(PHONE_NUMBER_ID).await;
    let receiver = Receiver::start().await;
    receiver
        .subscribe(&admin.client(&app), &["message.received"])
        .await;
    post_messages(&app, 0..5).await;
    receiver
        .wait_until("the first five", |r| contents(r).len() >= 5)
        .await;
    // Five more, and the platform stops while they are somewhere between the inbound log, the
    // event log, the stream and the fan-out.
    post_messages(&app, 5..10).await;
    let database_url = app.database_url.clone();
    app.stop();
    drop(app);

    // A second platform on the same database and stream takes over the dispatcher.
    let configured = prefix.clone();
    let second = TestApp::spawn_on(database_url, Roles::ALL, move |config| {
        config.nats_prefix = configured;
    })
    .await;
    post_messages(&second, 10..15).await;
    let received = receiver
        .wait_until("all fifteen", |r| contents(r).len() >= 15)
        .await;
    let expected: Vec<String> = (0..15).map(|n| format!("msg {n}")).collect();
    assert_eq!(contents(&received), expected, "once each, in order");
    let deliveries: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&second.pool)
        .await
        .unwrap();
    assert_eq!(deliveries, 15, "no event was fanned out twice");
    let position: i64 = sqlx::query_scalar("SELECT position FROM stream_positions")
        .fetch_one(&second.pool)
        .await
        .unwrap();
    assert!(position > 0, "the position is committed with the fan-out");
    second.stop();
    drop_stream(&prefix).await;
}
