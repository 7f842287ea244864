//! Messenger and Instagram webhooks end to end: the handshake, signed payloads into contacts and
//! conversations, duplicates, bad signatures, unknown accounts and tenant isolation.

use omnistream_tests::{fake_meta, TestApp, TEST_META_APP_SECRET, TEST_META_VERIFY_TOKEN};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn post_signed(app: &TestApp, path: &str, payload: &Value) -> reqwest::Response {
    let (body, signature) = fake_meta::signed(TEST_META_APP_SECRET, payload);
    reqwest::Client::new()
        .post(format!("{}{path}", app.base_url))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn event(sender: &str, recipient: &str, at: i64, body: Value) -> Value {
    let mut event =
        json!({"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": at});
    for (key, value) in body.as_object().unwrap() {
        event[key] = value.clone();
    }
    event
}

#[tokio::test]
async fn messenger_and_instagram_messages_arrive_in_the_inbox_and_replies_go_out_by_the_send_api() {
    let fake = fake_meta::FakeMeta::start().await;
    let graph = fake.base_url.clone();
    let app = TestApp::spawn_with(move |config| config.meta_graph_base_url = graph).await;
    let admin = app.register("Social Shop").await;
    let api = admin.client(&app);
    for (channel, key, config) in [
        (
            "messenger",
            "fb-PAGE1",
            json!({"page_id": "PAGE1", "page_name": "Shop", "page_access_token": "EAA-page"}),
        ),
        (
            "instagram",
            "ig-IG1",
            json!({"ig_user_id": "IG1", "username": "shop", "access_token": "IGQ-token"}),
        ),
    ] {
        let created = api
            .post(
                "/api/integrations/accounts",
                json!({"channel": channel, "account_key": key, "is_active": true, "config": config}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let handshake = reqwest::get(format!(
        "{}/webhooks/messenger?hub.mode=subscribe&hub.verify_token={TEST_META_VERIFY_TOKEN}&hub.challenge=4242",
        app.base_url
    ))
    .await
    .unwrap();
    assert_eq!(handshake.text().await.unwrap(), "4242");

    let now = chrono::Utc::now().timestamp_millis();
    let messenger = json!({"object": "page", "entry": [{"id": "PAGE1", "time": now, "messaging": [
        event("PSID1", "PAGE1", now, json!({"message": {"mid": "m_1", "text": "hello page"}})),
        event("PSID1", "PAGE1", now + 1, json!({"message": {"mid": "m_2", "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/a.jpg"}}]}})),
        event("PSID1", "PAGE1", now + 2, json!({"postback": {"mid": "m_3", "title": "Get started", "payload": "START"}})),
        event("PAGE1", "PSID1", now + 3, json!({"message": {"mid": "m_4", "text": "echo", "is_echo": true}})),
    ]}]});
    for _ in 0..2 {
        assert_eq!(
            post_signed(&app, "/webhooks/messenger", &messenger)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let instagram = json!({"object": "instagram", "entry": [{"id": "IG1", "time": now, "messaging": [
        event("IGSID1", "IG1", now, json!({"message": {"mid": "ig_1", "text": "love it", "reply_to": {"story": {"url": "https://cdn.example/s", "id": "S1"}}}})),
    ]}]});
    assert_eq!(
        post_signed(&app, "/webhooks/instagram", &instagram)
            .await
            .status(),
        StatusCode::OK
    );

    let listed = app
        .eventually(&api, "/api/conversations", |body| {
            body["data"].as_array().is_some_and(|d| d.len() == 2)
        })
        .await;
    let of = |channel: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == channel)
            .cloned()
            .unwrap()
    };
    let page = of("messenger");
    let messages = app
        .eventually(
            &api,
            &format!(
                "/api/conversations/{}/messages",
                page["id"].as_str().unwrap()
            ),
            |body| body["data"].as_array().is_some_and(|d| d.len() == 3),
        )
        .await;
    let types: Vec<&str> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"text") && types.contains(&"image") && types.contains(&"button"),
        "{types:?}"
    );
    let ig = of("instagram");
    let messages = app
        .eventually(
            &api,
            &format!("/api/conversations/{}/messages", ig["id"].as_str().unwrap()),
            |body| body["data"].as_array().is_some_and(|d| d.len() == 1),
        )
        .await;
    assert_eq!(messages["data"][0]["content"], "love it");
    assert_eq!(messages["data"][0]["data"]["story_reply"]["id"], "S1");

    // Agents answer through the Page's Send API, as RESPONSE, to the PSID and the IGSID.
    for (conversation, text) in [(&page, "Hi from the shop"), (&ig, "Thanks!")] {
        let sent = api
            .post(
                &format!(
                    "/api/conversations/{}/messages",
                    conversation["id"].as_str().unwrap()
                ),
                json!({"type": "text", "content": text}),
            )
            .await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let sends = loop {
        let sends = fake.sent_messages().await;
        if sends.len() == 2 || tokio::time::Instant::now() > deadline {
            break sends;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(sends.len(), 2, "{sends:?}");
    let to_page = sends
        .iter()
        .find(|s| s.body["recipient"]["id"] == "PSID1")
        .expect("a Messenger send");
    assert!(to_page.path.ends_with("PAGE1/messages"), "{}", to_page.path);
    assert_eq!(to_page.body["messaging_type"], "RESPONSE");
    assert_eq!(to_page.body["message"]["text"], "Hi from the shop");
    let to_ig = sends
        .iter()
        .find(|s| s.body["recipient"]["id"] == "IGSID1")
        .expect("an Instagram send");
    assert_eq!(to_ig.body["message"]["text"], "Thanks!");
    app.eventually(
        &api,
        &format!(
            "/api/conversations/{}/messages",
            page["id"].as_str().unwrap()
        ),
        |body| {
            body["data"].as_array().is_some_and(|d| {
                d.iter().any(|m| {
                    m["direction"] == "outbound"
                        && m["status"] == "sent"
                        && m["external_id"]
                            .as_str()
                            .is_some_and(|id| id.starts_with("m_fake"))
                })
            })
        },
    )
    .await;

    // A forged signature is refused before anything is stored; another tenant sees nothing.
    let forged = reqwest::Client::new()
        .post(format!("{}/webhooks/messenger", app.base_url))
        .header("x-hub-signature-256", "sha256=00")
        .body(messenger.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let other = app.register("Other").await.client(&app);
    let foreign = other.get("/api/conversations").await;
    assert_eq!(foreign.body["data"].as_array().map(Vec::len), Some(0));
    app.stop();
}
