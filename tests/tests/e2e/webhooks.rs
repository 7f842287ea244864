//! Outgoing webhooks: endpoints, signed delivery of real events, retries, 410, SSRF, isolation.

use std::time::Duration;

use omnistream_tests::fake_meta::whatsapp_text_webhook;
use omnistream_tests::webhook_receiver::Receiver;
use omnistream_tests::{nats_url, TestApp};
use reqwest::StatusCode;
use serde_json::json;

use crate::whatsapp::{spine_with, Spine};

/// A spine on a NATS prefix of its own (the dispatcher's durable consumer is per prefix).
pub(crate) async fn isolated_spine(phone_number_id: &str) -> (Spine, String) {
    let prefix = format!("wh_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let configured = prefix.clone();
    let spine = spine_with(phone_number_id, move |config| {
        config.nats_prefix = configured
    })
    .await;
    (spine, prefix)
}

pub(crate) async fn drop_stream(prefix: &str) {
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let _ = async_nats::jetstream::new(client)
            .delete_stream(format!("{}_EVENTS", prefix.to_uppercase()))
            .await;
    }
}

#[tokio::test]
async fn endpoints_are_validated_and_their_secrets_shown_once() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let receiver = Receiver::start().await;
    let created = api
        .post("/api/outgoing-webhooks", json!({"name": "CRM", "url": receiver.url, "events": ["message.received", "conversation.created"], "headers": {"X-Team": "ops"}}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = created.body["id"].as_str().unwrap();
    let listed = api.get("/api/outgoing-webhooks").await.body;
    assert_eq!(
        listed[0]["secret"],
        format!("****{}", &secret[secret.len() - 4..])
    );

    for (body, field) in [
        (
            json!({"name": "x", "url": receiver.url, "events": ["message.exploded"]}),
            "events",
        ),
        (
            json!({"name": "x", "url": receiver.url, "events": []}),
            "events",
        ),
        (
            json!({"name": "x", "url": receiver.url, "events": ["*"], "secret": "too-short"}),
            "secret",
        ),
        (
            json!({"name": "x", "url": receiver.url, "events": ["*"], "headers": {"webhook-signature": "forged"}}),
            "headers.webhook-signature",
        ),
        (
            json!({"name": "x", "url": "not a url", "events": ["*"]}),
            "url",
        ),
    ] {
        let response = api.post("/api/outgoing-webhooks", body).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{field}: {}",
            response.body
        );
        assert!(
            response.body["error"]["details"][field].is_string(),
            "{field}: {}",
            response.body
        );
    }

    let types = api.get("/api/outgoing-webhooks/event-types").await.body;
    assert_eq!(types.as_array().unwrap().len(), 14);
    assert_eq!(types[0]["type"], "conversation.created");
    assert_eq!(
        types[5]["example"]["content"], "Halo, pesanan saya belum sampai",
        "examples come from real events"
    );

    receiver.set_secret(&secret).await;
    let tested = api
        .post(&format!("/api/outgoing-webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert_eq!(tested.body["status"], "success");
    assert_eq!(tested.body["event_type"], "webhook.test");
    let got = receiver.received().await;
    assert!(
        got[0].verified,
        "a Standard Webhooks library verifies the signature"
    );
    assert_eq!(got[0].headers["x-team"], "ops");

    let rotated = api
        .patch(
            &format!("/api/outgoing-webhooks/{id}"),
            json!({"secret": omnistream_commands::webhooks::wire::generate_secret()}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK);
    api.post(&format!("/api/outgoing-webhooks/{id}/test"), json!({}))
        .await;
    let after = receiver.received().await;
    assert!(
        after[1].verified,
        "during a rotation the old secret still verifies"
    );
    assert_eq!(
        after[1].headers["webhook-signature"]
            .to_str()
            .unwrap()
            .split(' ')
            .count(),
        2
    );

    receiver.fail_with(Some(503)).await;
    let failed = api
        .post(
            &format!("/api/outgoing-webhooks/{id}/test"),
            json!({"event_type": "message.received"}),
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK);
    assert_eq!(failed.body["status"], "failed");
    assert_eq!(failed.body["response_status"], 503);
    let log = api
        .get(&format!(
            "/api/outgoing-webhooks/{id}/deliveries?status=failed"
        ))
        .await
        .body;
    assert_eq!(log["total"], 1);

    let other = app.register("Other").await;
    for (method, path) in [
        ("PATCH", format!("/api/outgoing-webhooks/{id}")),
        ("DELETE", format!("/api/outgoing-webhooks/{id}")),
        ("GET", format!("/api/outgoing-webhooks/{id}/deliveries")),
        ("POST", format!("/api/outgoing-webhooks/{id}/test")),
    ] {
        let response = other
            .client(&app)
            .send(method.parse().unwrap(), &path, Some(json!({})))
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {path}");
    }
    assert_eq!(
        other.client(&app).get("/api/outgoing-webhooks").await.body,
        json!([])
    );
    assert_eq!(
        api.delete(&format!("/api/outgoing-webhooks/{id}"))
            .await
            .status,
        StatusCode::OK
    );
    let agent = app.create_agent(&admin, "agent", json!({})).await;
    assert_eq!(
        agent
            .client(&app)
            .get("/api/outgoing-webhooks")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn private_and_plain_http_endpoints_are_refused_by_default() {
    let app = TestApp::spawn_with(|config| config.outgoing_webhooks_allow_private = false).await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    for url in [
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/latest",
        "https://[::1]/hook",
        "http://example.com/hook",
    ] {
        let response = api
            .post(
                "/api/outgoing-webhooks",
                json!({"name": "x", "url": url, "events": ["*"]}),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            response.body
        );
        assert_eq!(response.error_code(), "url_not_allowed", "{url}");
    }
}

#[tokio::test]
async fn real_events_are_delivered_signed_and_retried_until_the_endpoint_recovers() {
    let (Spine { app, admin, .. }, prefix) = isolated_spine("500000000000001").await;
    let api = admin.client(&app);
    let healthy = Receiver::start().await;
    let flaky = Receiver::start().await;
    let mut secrets = Vec::new();
    for receiver in [&healthy, &flaky] {
        let created = api
            .post(
                "/api/outgoing-webhooks",
                json!({"name": "r", "url": receiver.url, "events": ["*"]}),
            )
            .await;
        let secret = created.body["secret"].as_str().unwrap().to_owned();
        receiver.set_secret(&secret).await;
        secrets.push(created.body["id"].as_str().unwrap().to_owned());
    }
    flaky.fail_with(Some(500)).await;
    let now = chrono::Utc::now().timestamp();
    for n in 0..3 {
        let webhook = whatsapp_text_webhook(
            "500000000000001",
            "62809001",
            "Hana",
            &format!("wamid.W{n}"),
            &format!("msg {n}"),
            now,
        );
        app.post_meta_webhook(&webhook).await;
    }
    let received = healthy
        .wait_until("three messages", |r| {
            r.iter()
                .filter(|e| e.event_type == "message.received")
                .count()
                == 3
        })
        .await;
    assert!(
        received.iter().all(|r| r.verified),
        "every delivery verifies"
    );
    let contents: Vec<String> = received
        .iter()
        .filter(|r| r.event_type == "message.received")
        .map(|r| r.body["data"]["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        contents,
        ["msg 0", "msg 1", "msg 2"],
        "in conversation order"
    );
    let inbox = app
        .eventually(&api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let conversation = inbox["data"][0]["id"].as_str().unwrap().to_owned();
    api.post(
        &format!("/api/conversations/{conversation}/notes"),
        json!({"content": "VIP customer"}),
    )
    .await;
    let received = healthy
        .wait_until("note.created", |r| {
            r.iter().any(|e| e.event_type == "note.created")
        })
        .await;
    let note = received
        .iter()
        .find(|r| r.event_type == "note.created")
        .unwrap();
    assert_eq!(note.body["data"]["content"], "VIP customer");
    let first = received
        .iter()
        .find(|r| r.event_type == "contact.created")
        .expect("contact.created");
    assert_eq!(
        first.body["organization_id"],
        admin.organization_id.as_str()
    );
    assert_eq!(
        first.body["id"],
        first.id.as_str(),
        "webhook-id is the envelope id"
    );

    // The failing endpoint got attempts with the same webhook-id; it recovers and catches up in order.
    flaky.wait_until("retries", |r| r.len() >= 2).await;
    flaky.fail_with(None).await;
    let caught_up = flaky
        .wait_until("everything after recovery", |r| {
            let ok: Vec<&str> = r
                .iter()
                .filter(|e| e.event_type == "message.received")
                .map(|e| e.id.as_str())
                .collect();
            let mut unique = ok.clone();
            unique.dedup();
            unique.len() >= 3
        })
        .await;
    let mut attempts_per_id = std::collections::HashMap::<&str, usize>::new();
    for request in &caught_up {
        *attempts_per_id.entry(request.id.as_str()).or_default() += 1;
    }
    assert!(
        attempts_per_id.values().any(|n| *n >= 2),
        "a retry carries the same webhook-id: {attempts_per_id:?}"
    );
    let order: Vec<String> = caught_up
        .iter()
        .filter(|e| e.event_type == "message.received")
        .map(|e| e.body["data"]["content"].as_str().unwrap().to_owned())
        .collect();
    let mut seen = Vec::new();
    for content in order {
        if seen.last() != Some(&content) {
            seen.push(content);
        }
    }
    assert_eq!(
        seen,
        ["msg 0", "msg 1", "msg 2"],
        "per-conversation order survives the retries"
    );
    let log = api
        .get(&format!(
            "/api/outgoing-webhooks/{}/deliveries?per_page=100",
            secrets[1]
        ))
        .await
        .body;
    let attempts: Vec<i64> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attempt"].as_i64().unwrap())
        .collect();
    assert!(
        attempts.iter().any(|a| *a > 1),
        "attempts are logged one row each: {attempts:?}"
    );
    drop_stream(&prefix).await;
}

#[tokio::test]
async fn an_endpoint_answering_410_is_disabled_and_the_activity_log_says_why() {
    let (Spine { app, admin, .. }, prefix) = isolated_spine("500000000000002").await;
    let api = admin.client(&app);
    let gone = Receiver::start().await;
    gone.fail_with(Some(410)).await;
    let created = api
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "old", "url": gone.url, "events": ["message.received"]}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let webhook = whatsapp_text_webhook(
        "500000000000002",
        "62809002",
        "Ika",
        "wamid.G1",
        "hello",
        chrono::Utc::now().timestamp(),
    );
    app.post_meta_webhook(&webhook).await;
    gone.wait_until("one attempt", |r| !r.is_empty()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let hooks = api.get("/api/outgoing-webhooks").await.body;
        if hooks[0]["is_active"] == false {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never disabled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = api
        .get(&format!(
            "/api/activity-logs?action=webhook.disabled&entity_id={id}"
        ))
        .await
        .body;
    assert_eq!(logs["total"], 1);
    assert!(logs["data"][0]["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        gone.received().await.len(),
        1,
        "no retries to a disabled endpoint"
    );
    drop_stream(&prefix).await;
}

#[tokio::test]
async fn replay_by_time_range_and_redelivery_resend_with_the_original_ids() {
    let (Spine { app, admin, .. }, prefix) = isolated_spine("500000000000003").await;
    let api = admin.client(&app);
    let receiver = Receiver::start().await;
    let created = api
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "r", "url": receiver.url, "events": ["message.received"]}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let send = |n: u32| {
        let webhook = whatsapp_text_webhook(
            "500000000000003",
            "62809003",
            "Joko",
            &format!("wamid.P{n}"),
            &format!("m{n}"),
            chrono::Utc::now().timestamp(),
        );
        let app = &app;
        async move { app.post_meta_webhook(&webhook).await }
    };
    send(0).await;
    receiver.wait_until("m0", |r| r.len() == 1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let since = chrono::Utc::now();
    send(1).await;
    send(2).await;
    receiver.wait_until("m1, m2", |r| r.len() == 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let until = chrono::Utc::now();
    send(3).await;
    let before = receiver.wait_until("m3", |r| r.len() == 4).await;

    let replayed = api
        .post(
            &format!("/api/outgoing-webhooks/{id}/replay"),
            json!({"since": since, "until": until}),
        )
        .await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.body);
    assert_eq!(
        replayed.body["queued"], 2,
        "exactly the events of the range"
    );
    let after = receiver.wait_until("the replay", |r| r.len() == 6).await;
    let replayed_contents: Vec<&str> = after[4..]
        .iter()
        .map(|r| r.body["data"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(replayed_contents, ["m1", "m2"]);
    assert_eq!(
        after[4].id, before[1].id,
        "a replay keeps the original webhook-id"
    );

    let after_event = api
        .post(
            &format!("/api/outgoing-webhooks/{id}/replay"),
            json!({"after_event_id": before[2].id}),
        )
        .await;
    assert_eq!(after_event.body["queued"], 1, "only m3 follows m2");
    receiver.wait_until("m3 again", |r| r.len() == 7).await;

    let log = api
        .get(&format!(
            "/api/outgoing-webhooks/{id}/deliveries?status=success&per_page=1"
        ))
        .await
        .body;
    let delivery = log["data"][0]["id"].as_str().unwrap();
    let redelivered = api
        .post(
            &format!("/api/outgoing-webhooks/{id}/deliveries/{delivery}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(
        redelivered.status,
        StatusCode::ACCEPTED,
        "{}",
        redelivered.body
    );
    assert_eq!(redelivered.body["status"], "pending");
    let last = receiver
        .wait_until("the redelivery", |r| r.len() == 8)
        .await;
    assert_eq!(last[7].id, log["data"][0]["event_id"].as_str().unwrap());
    let bad = api
        .post(&format!("/api/outgoing-webhooks/{id}/replay"), json!({}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    drop_stream(&prefix).await;
}

#[tokio::test]
async fn a_thousand_events_reach_healthy_endpoints_in_order_while_a_failing_one_waits_its_turn() {
    let prefix = format!("wh_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let configured = prefix.clone();
    let Spine { app, admin, .. } = spine_with("500000000000004", move |config| {
        config.nats_prefix = configured;
        config.outgoing_webhooks_retry_schedule =
            omnistream_commands::webhooks::wire::parse_schedule(
                // Enough retries that the failing endpoint is still retrying when it recovers,
                // however long the healthy endpoints take on a loaded machine (~10 min).
                &format!("200ms,500ms,1s,2s{}", ",5s".repeat(120)),
            )
            .unwrap();
    })
    .await;
    let api = admin.client(&app);
    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    for receiver in &receivers {
        receiver.subscribe(&api, &["message.received"]).await;
    }
    let failing = &receivers[2];
    failing.fail_with(Some(503)).await;

    // 10 customers × 100 messages, 10 messages per webhook call.
    let ts = chrono::Utc::now().timestamp().to_string();
    for batch in 0..100 {
        let customer = batch % 10;
        let messages: Vec<serde_json::Value> = (0..10)
            .map(|i| {
                let n = (batch / 10) * 10 + i;
                json!({"from": format!("6281000{customer:02}"), "id": format!("wamid.K{customer}.{n}"), "timestamp": ts,
                       "type": "text", "text": {"body": format!("{customer}:{n:03}")}})
            })
            .collect();
        let value = json!({"contacts": [{"profile": {"name": format!("C{customer}")}, "wa_id": format!("6281000{customer:02}")}], "messages": messages});
        assert_eq!(
            app.post_meta_webhook(&omnistream_tests::fake_meta::whatsapp_webhook(
                "500000000000004",
                value
            ))
            .await
            .status(),
            StatusCode::OK
        );
    }
    let complete = |r: &[omnistream_tests::webhook_receiver::Received]| {
        let ok: std::collections::HashSet<&str> =
            r.iter().filter(|e| e.ok).map(|e| e.id.as_str()).collect();
        ok.len() == 1000
    };
    for healthy in &receivers[..2] {
        healthy.wait_until("1,000 events", complete).await;
    }
    assert!(
        failing.received().await.iter().all(|r| !r.ok),
        "the healthy endpoints did not wait for the failing one"
    );
    failing.fail_with(None).await;
    failing
        .wait_until("1,000 events after recovery", complete)
        .await;

    for receiver in &receivers {
        let received = receiver.received().await;
        assert!(received.iter().all(|r| r.verified));
        let delivered: Vec<&str> = received
            .iter()
            .filter(|r| r.ok)
            .map(|r| r.body["data"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(delivered.len(), 1000, "each event delivered once");
        for customer in 0..10 {
            let theirs: Vec<&str> = delivered
                .iter()
                .copied()
                .filter(|c| c.starts_with(&format!("{customer}:")))
                .collect();
            let mut sorted = theirs.clone();
            sorted.sort();
            assert_eq!(
                theirs, sorted,
                "customer {customer}'s messages arrive in order"
            );
            assert_eq!(theirs.len(), 100);
        }
    }

    // Replaying everything reads the log a page at a time (several pages here) and queues each
    // subscribed event exactly once, in order, with its original id.
    let hooks = api.get("/api/outgoing-webhooks").await.body;
    let first_hook = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["url"] == receivers[0].url.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let replayed = api
        .post(
            &format!("/api/outgoing-webhooks/{first_hook}/replay"),
            json!({ "since": since }),
        )
        .await;
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.body);
    assert_eq!(replayed.body["queued"], 1000);
    let twice = receivers[0]
        .wait_until("the replayed 1,000", |r| {
            r.iter().filter(|e| e.ok).count() == 2000
        })
        .await;
    let ok: Vec<&omnistream_tests::webhook_receiver::Received> =
        twice.iter().filter(|e| e.ok).collect();
    let (original, again) = ok.split_at(1000);
    let original_ids: Vec<&str> = original.iter().map(|e| e.id.as_str()).collect();
    let mut replayed_ids: Vec<&str> = again.iter().map(|e| e.id.as_str()).collect();
    let mut sorted_original = original_ids.clone();
    sorted_original.sort();
    replayed_ids.sort();
    assert_eq!(replayed_ids, sorted_original, "each event replayed once");
    drop_stream(&prefix).await;
}

#[tokio::test]
async fn redirects_are_failures_and_an_endpoint_failing_for_five_days_is_disabled() {
    use axum::routing::post;
    let (Spine { app, admin, .. }, prefix) = isolated_spine("500000000000005").await;
    let api = admin.client(&app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let redirecting = format!("http://{}/hook", listener.local_addr().unwrap());
    let router = axum::Router::new().route(
        "/hook",
        post(|| async {
            (
                StatusCode::FOUND,
                [("location", "http://169.254.169.254/latest/meta-data")],
            )
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let created = api
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "r", "url": redirecting, "events": ["*"]}),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let tested = api
        .post(&format!("/api/outgoing-webhooks/{id}/test"), json!({}))
        .await;
    assert_eq!(tested.body["status"], "failed");
    assert_eq!(tested.body["response_status"], 302);
    assert!(tested.body["error_message"]
        .as_str()
        .unwrap()
        .contains("redirect"));

    sqlx::query("UPDATE outgoing_webhooks SET failing_since = now() - interval '6 days' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    let webhook = whatsapp_text_webhook(
        "500000000000005",
        "62809005",
        "Lia",
        "wamid.Z1",
        "hi",
        chrono::Utc::now().timestamp(),
    );
    app.post_meta_webhook(&webhook).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while api.get("/api/outgoing-webhooks").await.body[0]["is_active"] != false {
        assert!(tokio::time::Instant::now() < deadline, "never disabled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = api
        .get(&format!(
            "/api/activity-logs?action=webhook.disabled&entity_id={id}"
        ))
        .await
        .body;
    assert!(logs["data"][0]["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("5 days"));
    drop_stream(&prefix).await;
}

#[tokio::test]
async fn fanning_out_the_same_event_twice_creates_one_delivery() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let receiver = Receiver::start().await;
    admin
        .client(&app)
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "r", "url": receiver.url, "events": ["*"]}),
        )
        .await;
    let tenant: uuid::Uuid = admin.organization_id.parse().unwrap();
    let aggregate_id = format!("{tenant}:{}", uuid::Uuid::new_v4());
    let payload = json!({"TagsUpdated": {"tags": ["a"], "at": "2026-01-01T00:00:00Z"}});
    let message_id = format!("Conversation:{aggregate_id}:3");
    let event = omnistream_commands::webhooks::fanout::EventRef {
        tenant,
        aggregate_type: "Conversation",
        aggregate_id: &aggregate_id,
        message_id: &message_id,
        payload: &payload,
        recorded_at: chrono::Utc::now(),
    };
    assert_eq!(
        omnistream_commands::webhooks::fanout::fan_out(&app.pool, event, None)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        omnistream_commands::webhooks::fanout::fan_out(&app.pool, event, None)
            .await
            .unwrap(),
        0,
        "a JetStream redelivery is a no-op"
    );
}

#[tokio::test]
async fn an_event_forged_on_nats_is_not_delivered_while_real_events_are() {
    let (Spine { app, admin, .. }, prefix) = isolated_spine("500000000000009").await;
    let api = admin.client(&app);
    let receiver = Receiver::start().await;
    let created = api
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "r", "url": receiver.url, "events": ["message.received"]}),
        )
        .await;
    receiver
        .set_secret(created.body["secret"].as_str().unwrap())
        .await;
    let now = chrono::Utc::now().timestamp();
    let inbound = |n: u32| {
        whatsapp_text_webhook(
            "500000000000009",
            "62809009",
            "Hana",
            &format!("wamid.F{n}"),
            &format!("real {n}"),
            now,
        )
    };
    app.post_meta_webhook(&inbound(0)).await;
    receiver
        .wait_until("the first real message", |r| r.len() == 1)
        .await;

    // Someone with access to NATS alone publishes a well-formed event the store never held:
    // the stored message with its content changed, at a sequence that does not exist.
    let (aggregate_id, mut payload): (String, serde_json::Value) = sqlx::query_as(
        "SELECT aggregate_id, payload FROM events WHERE event_type = 'InboundMessageReceived' LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let forged_text = payload
        .to_string()
        .replace("real 0", "FORGED wire transfer");
    payload = serde_json::from_str(&forged_text).unwrap();
    let id = format!("Conversation:{aggregate_id}:9999");
    let tenant = admin.organization_id.clone();
    let forged = json!({"id": id, "tenant_id": tenant, "aggregate_type": "Conversation",
                        "aggregate_id": aggregate_id, "sequence": 9999,
                        "event_type": "InboundMessageReceived", "event_version": "1",
                        "payload": payload, "metadata": {}, "recorded_at": chrono::Utc::now()});
    let client = async_nats::connect(nats_url()).await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", id.as_str());
    async_nats::jetstream::new(client)
        .publish_with_headers(
            format!("{prefix}.events.{tenant}.Conversation.InboundMessageReceived"),
            headers,
            serde_json::to_vec(&forged).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .expect("JetStream stored the forged message");

    // A real event published after it still arrives; the dispatcher handles the stream in
    // order, so by then the forged message has been handled too.
    app.post_meta_webhook(&inbound(1)).await;
    let received = receiver
        .wait_until("the second real message", |r| {
            r.iter().any(|e| e.body["data"]["content"] == "real 1")
        })
        .await;
    assert!(received.iter().all(|r| r.verified));
    assert!(
        received
            .iter()
            .all(|r| !r.body.to_string().contains("FORGED")),
        "a forged event was signed and delivered: {received:?}"
    );
    assert_eq!(received.len(), 2, "{received:?}");
    drop_stream(&prefix).await;
}

/// A time-range replay includes an event recorded inside the range by a transaction that was
/// still open when the replay began (it commits a moment later): the commit-order guard alone
/// would leave it out of this replay, and no later read of the same range was asked for.
#[tokio::test]
async fn a_range_replay_waits_for_a_writer_still_open_inside_the_range() {
    let (Spine { app, admin, .. }, prefix) = isolated_spine("500000000000019").await;
    let api = admin.client(&app);
    let receiver = Receiver::start().await;
    receiver.subscribe(&api, &["message.received"]).await;
    let webhook = whatsapp_text_webhook(
        "500000000000019",
        "62809019",
        "Rina",
        "wamid.W1",
        "first",
        chrono::Utc::now().timestamp(),
    );
    app.post_meta_webhook(&webhook).await;
    receiver
        .wait_until("the first message", |r| r.len() == 1)
        .await;
    let since = chrono::Utc::now() - chrono::Duration::hours(1);

    // A writer appends to the conversation's stream and keeps its transaction open.
    let mut writer = app.pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT aggregate_type, aggregate_id, sequence + 1000, event_type, event_version, payload, metadata
         FROM events WHERE event_type = 'InboundMessageReceived' LIMIT 1",
    )
    .execute(&mut *writer)
    .await
    .unwrap();
    let until = chrono::Utc::now();
    let commit_later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        writer.commit().await.unwrap();
    });
    let id = api.get("/api/outgoing-webhooks").await.body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let replayed = api
        .post(
            &format!("/api/outgoing-webhooks/{id}/replay"),
            json!({"since": since, "until": until}),
        )
        .await;
    commit_later.await.unwrap();
    assert_eq!(replayed.status, StatusCode::ACCEPTED, "{}", replayed.body);
    assert_eq!(
        replayed.body["queued"], 2,
        "the event of the writer open at `until` is replayed too"
    );
    drop_stream(&prefix).await;
}
