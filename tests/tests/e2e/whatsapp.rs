//! The conversation spine over WhatsApp: a signed webhook in, the inbox and the realtime stream,
//! an agent's reply out through the Graph API, and the receipts back.

use std::time::Duration;

use omnistream_tests::fake_meta::{
    whatsapp_status_webhook, whatsapp_text_webhook, whatsapp_webhook, FakeMeta,
};
use omnistream_tests::sse::SseClient;
use omnistream_tests::{Member, TestApp, TEST_META_VERIFY_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) const PHONE_NUMBER_ID: &str = "106540352242922";

pub(crate) struct Spine {
    pub app: TestApp,
    pub fake: FakeMeta,
    pub admin: Member,
    pub account: Value,
}

/// An app talking to a fake Graph API, a tenant, and an active WhatsApp account.
pub(crate) async fn spine(phone_number_id: &str) -> Spine {
    spine_with(phone_number_id, |_| {}).await
}

/// Like [`spine`], with a configuration adjustment.
pub(crate) async fn spine_with(
    phone_number_id: &str,
    customize: impl FnOnce(&mut omnistream_gateway::Config) + Send + 'static,
) -> Spine {
    let fake = FakeMeta::start().await;
    let base = fake.base_url.clone();
    let app = TestApp::spawn_with(move |config| {
        config.meta_graph_base_url = base;
        customize(config);
    })
    .await;
    let admin = app.register("Toko Maju").await;
    let account = admin
        .client(&app)
        .post(
            "/api/integrations/accounts",
            json!({"channel": "whatsapp", "is_active": true, "display_name": "Support line",
                   "config": {"phone_number_id": phone_number_id, "waba_id": "100000000000001",
                              "access_token": "EAAG-secret-access-token-1234", "pin": "123456"}}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED, "{}", account.body);
    Spine {
        app,
        fake,
        admin,
        account: account.body,
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_customer_message_reaches_the_inbox_and_the_stream_and_the_reply_reaches_meta() {
    let Spine {
        app,
        fake,
        admin,
        account,
    } = spine(PHONE_NUMBER_ID).await;
    assert_eq!(account["account_key"], format!("wa-{PHONE_NUMBER_ID}"));
    assert_eq!(
        account["config"]["access_token"], "****1234",
        "secrets are masked"
    );
    assert_eq!(
        account["config"]["pin"], "****",
        "a 6-digit PIN shows none of its digits"
    );
    assert_eq!(
        account["is_default"], true,
        "the first account is the default"
    );
    let onboarding: Vec<String> = fake
        .requests()
        .await
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        onboarding
            .iter()
            .any(|r| r.ends_with(&format!("/{PHONE_NUMBER_ID}/register"))),
        "{onboarding:?}"
    );
    assert!(
        onboarding
            .iter()
            .any(|r| r.ends_with("/100000000000001/subscribed_apps")),
        "{onboarding:?}"
    );

    let mut stream = SseClient::connect(&app.base_url, &admin.token, None).await;
    let webhook = whatsapp_text_webhook(
        PHONE_NUMBER_ID,
        "6281234567890",
        "Sari",
        "wamid.IN1",
        "Halo, pesanan saya belum sampai",
        now(),
    );
    let acknowledged = app.post_meta_webhook(&webhook).await;
    assert_eq!(acknowledged.status(), StatusCode::OK);
    assert_eq!(acknowledged.text().await.unwrap(), "EVENT_RECEIVED");

    let api = admin.client(&app);
    let inbox = app
        .eventually(&api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let conversation = &inbox["data"][0];
    assert_eq!(conversation["channel"], "whatsapp");
    assert_eq!(conversation["status"], "open");
    assert_eq!(conversation["unread_count"], 1);
    assert_eq!(conversation["contact"]["name"], "Sari");
    assert_eq!(conversation["contact"]["phone_number"], "6281234567890");
    assert_eq!(
        conversation["last_message_preview"],
        "Halo, pesanan saya belum sampai"
    );
    assert_eq!(conversation["integration_account_id"], account["id"]);
    let id = conversation["id"].as_str().unwrap().to_owned();

    let events = stream
        .until("message.received", Duration::from_secs(20))
        .await;
    let types: Vec<_> = events.iter().filter_map(|e| e.event.clone()).collect();
    assert!(
        types.contains(&"conversation.created".to_owned()),
        "{types:?}"
    );
    let received = events.last().unwrap();
    assert_eq!(received.data["type"], "message.received");
    assert_eq!(
        received.data["organization_id"],
        admin.organization_id.as_str()
    );
    assert_eq!(received.data["data"]["conversation_id"], id.as_str());
    assert_eq!(
        received.data["data"]["content"],
        "Halo, pesanan saya belum sampai"
    );

    let reply = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"content": "Maaf, kami cek dulu ya"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["status"], "pending");
    assert_eq!(reply.body["direction"], "outbound");
    assert_eq!(reply.body["sender_id"], admin.agent_id.as_str());
    let message_id = reply.body["id"].as_str().unwrap().to_owned();

    let sent = fake.wait_for_messages(1, Duration::from_secs(20)).await;
    let request = &sent[0];
    assert_eq!(request.path, format!("/{PHONE_NUMBER_ID}/messages"));
    assert_eq!(
        request.bearer_token(),
        Some("EAAG-secret-access-token-1234"),
        "the decrypted token is used"
    );
    assert_eq!(request.body["to"], "6281234567890");
    assert_eq!(request.body["type"], "text");
    assert_eq!(request.body["text"]["body"], "Maaf, kami cek dulu ya");

    let message_path = format!("/api/messages/{message_id}");
    let sent_message = app
        .eventually(&api, &message_path, |m| m["status"] == "sent")
        .await;
    let wamid = sent_message["external_id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."));
    let assigned = api.get(&format!("/api/conversations/{id}")).await.body;
    assert_eq!(
        assigned["assigned_agent_id"],
        admin.agent_id.as_str(),
        "replying assigns an unassigned conversation"
    );

    for status in ["delivered", "read"] {
        let receipt =
            whatsapp_status_webhook(PHONE_NUMBER_ID, "6281234567890", &wamid, status, now());
        assert_eq!(
            app.post_meta_webhook(&receipt).await.status(),
            StatusCode::OK
        );
        app.eventually(&api, &message_path, |m| m["status"] == status)
            .await;
    }
    let late =
        whatsapp_status_webhook(PHONE_NUMBER_ID, "6281234567890", &wamid, "delivered", now());
    app.post_meta_webhook(&late).await;
    let updates = stream
        .until("message.status_updated", Duration::from_secs(20))
        .await;
    assert!(updates
        .iter()
        .any(|e| e.event.as_deref() == Some("message.sent")));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        api.get(&message_path).await.body["status"],
        "read",
        "a status never moves backwards"
    );

    let messages = api
        .get(&format!("/api/conversations/{id}/messages"))
        .await
        .body;
    assert_eq!(messages["total"], 2);
    assert_eq!(
        messages["data"][0]["direction"], "inbound",
        "ascending within the page"
    );
    assert_eq!(messages["data"][1]["id"], message_id.as_str());
}

#[tokio::test]
async fn webhooks_need_a_valid_signature_and_the_handshake_a_known_token() {
    let Spine { app, account, .. } = spine("106540352242923").await;
    let payload = whatsapp_text_webhook("106540352242923", "628111", "X", "wamid.S", "hi", now());
    let unsigned = app
        .http
        .post(format!("{}/webhooks/meta", app.base_url))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let body: Value = unsigned.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_signature");
    let forged = app
        .http
        .post(format!("{}/webhooks/meta", app.base_url))
        .header(
            "x-hub-signature-256",
            omnistream_tests::fake_meta::sign("not-the-secret", payload.to_string().as_bytes()),
        )
        .body(payload.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM inbound_webhooks")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing unsigned is stored");

    for token in [
        TEST_META_VERIFY_TOKEN,
        account["verify_token"].as_str().unwrap(),
    ] {
        let url = format!(
            "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            app.base_url
        );
        let response = app.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), "1158201444");
    }
    let wrong = app
        .http
        .get(format!(
            "{}/webhooks/meta?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
            app.base_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn batches_duplicates_and_every_message_type_are_recorded_once() {
    let Spine { app, admin, .. } = spine("106540352242924").await;
    let ts = now().to_string();
    let value = json!({
        "contacts": [{"profile": {"name": "Budi"}, "wa_id": "628222"}],
        "messages": [
            {"from": "628222", "id": "wamid.T1", "timestamp": ts, "type": "text", "text": {"body": "first"}},
            {"from": "628222", "id": "wamid.T2", "timestamp": ts, "type": "image",
             "image": {"id": "media-1", "mime_type": "image/jpeg", "sha256": "abc", "caption": "the receipt"}},
            {"from": "628222", "id": "wamid.T3", "timestamp": ts, "type": "location",
             "location": {"latitude": -6.2, "longitude": 106.8, "name": "Kantor"}},
            {"from": "628222", "id": "wamid.T4", "timestamp": ts, "type": "interactive",
             "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Ya"}}},
            {"from": "628222", "id": "wamid.T5", "timestamp": ts, "type": "reaction",
             "reaction": {"message_id": "wamid.T1", "emoji": "👍"}},
            {"from": "628222", "id": "wamid.T6", "timestamp": ts, "type": "text", "text": {"body": "replying"},
             "context": {"from": "628222", "id": "wamid.T1"}},
            {"from": "628222", "id": "wamid.T7", "timestamp": ts, "type": "unsupported",
             "errors": [{"code": 131051, "title": "Message type unknown"}]}
        ]
    });
    let batch = whatsapp_webhook("106540352242924", value);
    assert_eq!(app.post_meta_webhook(&batch).await.status(), StatusCode::OK);
    assert_eq!(
        app.post_meta_webhook(&batch).await.status(),
        StatusCode::OK,
        "Meta redelivers"
    );
    let api = admin.client(&app);
    let inbox = app
        .eventually(&api, "/api/conversations", |b| {
            b["total"] == 1 && b["data"][0]["unread_count"] == 7
        })
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap();
    // Both deliveries processed: still one conversation with seven messages.
    let processed = app
        .eventually(&api, &format!("/api/conversations/{id}/messages"), |b| {
            b["total"] == 7
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = api
        .get(&format!("/api/conversations/{id}/messages"))
        .await
        .body;
    assert_eq!(
        messages["total"], 7,
        "the redelivery had no second effect: {processed}"
    );
    let by_type: std::collections::HashMap<String, Value> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["type"].as_str().unwrap().to_owned(), m.clone()))
        .collect();
    assert_eq!(by_type["image"]["content"], "the receipt");
    assert_eq!(by_type["image"]["media_mime_type"], "image/jpeg");
    assert_eq!(by_type["location"]["data"]["latitude"], -6.2);
    assert_eq!(by_type["interactive"]["content"], "Ya");
    assert_eq!(by_type["reaction"]["content"], "👍");
    assert!(
        by_type["reaction"]["reply_to_message_id"].is_string(),
        "reactions point at their message"
    );
    assert_eq!(
        by_type["unsupported"]["data"]["provider_type"],
        "unsupported"
    );
    let first = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"] == "first")
        .unwrap()["id"]
        .clone();
    let reply = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["content"] == "replying")
        .unwrap();
    assert_eq!(reply["reply_to_message_id"], first);
    let raw: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbound_webhooks WHERE status = 'processed'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(raw, 2, "both payloads are kept in the raw log");
}

#[tokio::test]
async fn free_form_replies_need_the_window_and_failed_sends_carry_metas_error() {
    let Spine {
        app, fake, admin, ..
    } = spine("106540352242925").await;
    let old = now() - 25 * 3600;
    let webhook = whatsapp_text_webhook(
        "106540352242925",
        "628333",
        "Citra",
        "wamid.OLD",
        "hello from yesterday",
        old,
    );
    app.post_meta_webhook(&webhook).await;
    let api = admin.client(&app);
    let inbox = app
        .eventually(&api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap().to_owned();
    let closed = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"content": "too late"}),
        )
        .await;
    assert_eq!(closed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(closed.error_code(), "messaging_window_closed");

    fake.fail_next_sends(vec![(
        400,
        omnistream_tests::fake_meta::graph_error_body(
            132001,
            "Template name does not exist in the translation",
        ),
    )])
    .await;
    let template = json!({"type": "template", "template": {"name": "order_update", "language": {"code": "id"}, "components": []}});
    let queued = api
        .post(&format!("/api/conversations/{id}/messages"), template)
        .await;
    assert_eq!(
        queued.status,
        StatusCode::CREATED,
        "templates may be sent outside the window: {}",
        queued.body
    );
    let path = format!("/api/messages/{}", queued.body["id"].as_str().unwrap());
    let failed = app
        .eventually(&api, &path, |m| m["status"] == "failed")
        .await;
    assert!(
        failed["error_message"].as_str().unwrap().contains("132001"),
        "{failed}"
    );

    let retried = api.post(&format!("{path}/retry"), json!({})).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.body["status"], "pending");
    app.eventually(&api, &path, |m| m["status"] == "sent").await;
    let again = api.post(&format!("{path}/retry"), json!({})).await;
    assert_eq!(again.error_code(), "message_not_failed");
}

#[tokio::test]
async fn concurrent_inbound_messages_on_one_conversation_lose_nothing() {
    let Spine { app, admin, .. } = spine("106540352242926").await;
    let posts = (0..30).map(|n| {
        let payload = whatsapp_text_webhook(
            "106540352242926",
            "628444",
            "Dewi",
            &format!("wamid.C{n}"),
            &format!("message {n}"),
            now(),
        );
        let app = &app;
        async move { app.post_meta_webhook(&payload).await.status() }
    });
    for status in futures::future::join_all(posts).await {
        assert_eq!(status, StatusCode::OK);
    }
    let api = admin.client(&app);
    let inbox = app
        .eventually(&api, "/api/conversations", |b| {
            b["total"] == 1 && b["data"][0]["unread_count"] == 30
        })
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap();
    app.eventually(
        &api,
        &format!("/api/conversations/{id}/messages?per_page=100"),
        |b| b["total"] == 30,
    )
    .await;
    let sequences: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM events WHERE aggregate_id LIKE '%' || $1 ORDER BY sequence",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        sequences,
        (1..=31).collect::<Vec<i64>>(),
        "contiguous: opened + 30 messages"
    );
}

#[tokio::test]
async fn payloads_we_do_not_understand_are_kept_and_acknowledged() {
    let Spine { app, admin, .. } = spine("106540352242927").await;
    let mut stream = SseClient::connect(&app.base_url, &admin.token, None).await;
    let unknown = [
        json!({"object": "page", "entry": [{"id": "1", "messaging": []}]}),
        json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}]}),
        whatsapp_text_webhook(
            "999999",
            "628555",
            "Nobody",
            "wamid.U1",
            "to an unknown number",
            now(),
        ),
    ];
    for payload in &unknown {
        assert_eq!(
            app.post_meta_webhook(payload).await.status(),
            StatusCode::OK
        );
    }
    let garbage = app
        .http
        .post(format!("{}/webhooks/meta", app.base_url))
        .header(
            "x-hub-signature-256",
            omnistream_tests::fake_meta::sign(omnistream_tests::TEST_META_APP_SECRET, b"not json"),
        )
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        garbage.status(),
        StatusCode::OK,
        "even unparseable bodies are acknowledged once stored"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ignored: i64 =
            sqlx::query_scalar("SELECT count(*) FROM inbound_webhooks WHERE status = 'ignored'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if ignored == 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{ignored} of 4 payloads marked ignored"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        admin.client(&app).get("/api/conversations").await.body["total"],
        0
    );

    app.post_meta_webhook(&whatsapp_text_webhook(
        "106540352242927",
        "628556",
        "Wati",
        "wamid.U2",
        "hi",
        now(),
    ))
    .await;
    let events = stream
        .until("message.received", Duration::from_secs(20))
        .await;
    let created = events
        .iter()
        .find(|e| e.event.as_deref() == Some("contact.created"))
        .expect("contact events are streamed");
    assert_eq!(created.data["data"]["name"], "Wati");
}
