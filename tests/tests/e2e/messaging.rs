//! Messenger and Instagram webhooks end to end: the handshake, signed payloads into contacts and
//! conversations, duplicates, bad signatures, unknown accounts and tenant isolation.

use std::time::Duration;

use omnistream_tests::{
    fake_meta, Client, Response, TestApp, TEST_META_APP_SECRET, TEST_META_VERIFY_TOKEN,
};
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

/// A fake Meta, an app whose Graph and Instagram Graph base URLs are the fake, and the client of
/// a new organization's admin, with one active account per `(channel, account_key, config)`.
pub(crate) async fn social_app(
    organization: &str,
    accounts: Vec<(&str, &str, Value)>,
) -> (fake_meta::FakeMeta, TestApp, Client) {
    let fake = fake_meta::FakeMeta::start().await;
    let graph = fake.base_url.clone();
    let app = TestApp::spawn_with(move |config| {
        config.meta_graph_base_url = graph.clone();
        config.instagram_base_url = graph;
    })
    .await;
    let api = app.register(organization).await.client(&app);
    for (channel, key, config) in accounts {
        create_account(&api, channel, key, config).await;
    }
    (fake, app, api)
}

#[tokio::test]
async fn messenger_and_instagram_messages_arrive_in_the_inbox_and_replies_go_out_by_the_send_api() {
    let (fake, app, api) = social_app(
        "Social Shop",
        vec![
            (
                "messenger",
                "fb-PAGE1",
                json!({"page_id": "PAGE1", "page_name": "Shop", "page_access_token": fake_meta::fake_page_token("PAGE1")}),
            ),
            (
                "instagram",
                "ig-IG1",
                json!({"ig_user_id": "IG1", "username": "shop", "access_token": fake_meta::fake_ig_token("IG1")}),
            ),
        ],
    )
    .await;
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
            |body| body["data"].as_array().is_some_and(|d| d.len() == 4),
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
    // The echo of a message sent from the Page inbox is an outbound message, already sent.
    let echo = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["external_id"] == "m_4")
        .expect("the echo is recorded");
    assert_eq!(
        (&echo["direction"], &echo["status"], &echo["content"]),
        (&json!("outbound"), &json!("sent"), &json!("echo"))
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
    assert_eq!(
        messages["data"][0]["media_url"], "https://cdn.example/s",
        "a story reply carries the story's URL (contract §20)"
    );

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
    // Instagram Login: the account's own messages endpoint with its Instagram token.
    assert!(to_ig.path.ends_with("/IG1/messages"), "{}", to_ig.path);
    assert_eq!(
        to_ig.bearer_token(),
        Some(fake_meta::fake_ig_token("IG1").as_str())
    );
    assert_eq!(
        to_page.bearer_token(),
        Some(fake_meta::fake_page_token("PAGE1").as_str())
    );
    // No echo was sent back out: two sends for two replies.
    assert_eq!(fake.sent_messages().await.len(), 2);
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

/// The conversation that appears in the inbox after those in `known` (which it joins).
async fn next_conversation(app: &TestApp, api: &Client, known: &mut Vec<String>) -> String {
    let expected = known.len() + 1;
    let listed = app
        .eventually(api, "/api/conversations?per_page=100", |body| {
            body["data"].as_array().is_some_and(|d| d.len() == expected)
        })
        .await;
    let id = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .find(|id| !known.iter().any(|k| k == id))
        .unwrap()
        .to_owned();
    known.push(id.clone());
    id
}

async fn reply(api: &Client, conversation: &str, text: &str) -> Response {
    api.post(
        &format!("/api/conversations/{conversation}/messages"),
        json!({"type": "text", "content": text}),
    )
    .await
}

/// Replies with `text` and waits until the reply is sent: its id and its provider id.
async fn reply_sent(
    app: &TestApp,
    api: &Client,
    conversation: &str,
    text: &str,
) -> (String, String) {
    let sent = reply(api, conversation, text).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    let ours = sent.body["id"].as_str().unwrap().to_owned();
    let sent = app
        .message_when(api, conversation, |m| {
            m["id"] == ours.as_str() && m["status"] == "sent"
        })
        .await;
    let external = sent["external_id"].as_str().unwrap().to_owned();
    (ours, external)
}

async fn create_account(api: &Client, channel: &str, key: &str, config: Value) {
    let created = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": channel, "account_key": key, "is_active": true, "config": config}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}

async fn post_ok(app: &TestApp, path: &str, payload: &Value) {
    assert_eq!(
        post_signed(app, path, payload).await.status(),
        StatusCode::OK
    );
}

const HOUR_MS: i64 = 3_600_000;

#[tokio::test]
async fn messenger_receipts_echoes_and_the_human_agent_tag() {
    let (fake, app, api) = social_app(
        "Receipts Shop",
        vec![(
            "messenger",
            "fb-PAGE7",
            json!({"page_id": "PAGE7", "page_access_token": fake_meta::fake_page_token("PAGE7")}),
        )],
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let page = |events: Vec<Value>| json!({"object": "page", "entry": [{"id": "PAGE7", "time": now, "messaging": events}]});
    let mut known = Vec::new();

    // A fresh conversation: our reply goes out as RESPONSE, is delivered, then read.
    let fresh = event(
        "PSID7",
        "PAGE7",
        now,
        json!({"message": {"mid": "m_7a", "text": "hi"}}),
    );
    post_ok(&app, "/webhooks/messenger", &page(vec![fresh])).await;
    let fresh_id = next_conversation(&app, &api, &mut known).await;
    let (ours, external) = reply_sent(&app, &api, &fresh_id, "Hello!").await;
    let mine = |m: &Value| m["id"] == ours.as_str();
    let sends = fake.wait_for_messages(1, Duration::from_secs(20)).await;
    assert_eq!(sends[0].body["messaging_type"], "RESPONSE");
    assert_eq!(
        sends[0].body["message"]["metadata"],
        format!("omnistream:{ours}")
    );
    // Its echo (with our metadata) and a repeat without it are not recorded a second time.
    let later = chrono::Utc::now().timestamp_millis() + 1_000;
    let metadata = format!("omnistream:{ours}");
    post_ok(
        &app,
        "/webhooks/messenger",
        &page(vec![
            event("PAGE7", "PSID7", later, json!({"message": {"mid": external, "text": "Hello!", "is_echo": true, "metadata": metadata}})),
            event("PAGE7", "PSID7", later, json!({"message": {"mid": external, "text": "Hello!", "is_echo": true}})),
            event("PSID7", "PAGE7", later, json!({"delivery": {"mids": [external], "watermark": later}})),
        ]),
    )
    .await;
    app.message_when(&api, &fresh_id, |m| mine(m) && m["status"] == "delivered")
        .await;
    let read = event(
        "PSID7",
        "PAGE7",
        later + 10,
        json!({"read": {"watermark": later + 5}}),
    );
    post_ok(&app, "/webhooks/messenger", &page(vec![read])).await;
    app.message_when(&api, &fresh_id, |m| mine(m) && m["status"] == "read")
        .await;
    let listed = api
        .get(&format!("/api/conversations/{fresh_id}/messages"))
        .await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        2,
        "{}",
        listed.body
    );

    // 30 hours after the customer's message a human agent's reply goes out with HUMAN_AGENT.
    let old = event(
        "PSID8",
        "PAGE7",
        now - 30 * HOUR_MS,
        json!({"message": {"mid": "m_8a", "text": "still there?"}}),
    );
    post_ok(&app, "/webhooks/messenger", &page(vec![old])).await;
    let old_id = next_conversation(&app, &api, &mut known).await;
    let tagged = reply(&api, &old_id, "Sorry for the wait").await;
    assert_eq!(tagged.status, StatusCode::CREATED, "{}", tagged.body);
    let sends = fake.wait_for_messages(2, Duration::from_secs(20)).await;
    let tagged_send = sends
        .iter()
        .find(|s| s.body["recipient"]["id"] == "PSID8")
        .expect("the tagged send");
    assert_eq!(tagged_send.body["messaging_type"], "MESSAGE_TAG");
    assert_eq!(tagged_send.body["tag"], "HUMAN_AGENT");
    let stored = app
        .message_when(&api, &old_id, |m| m["direction"] == "outbound")
        .await;
    assert_eq!(stored["data"]["message_tag"], "HUMAN_AGENT");
    // Eight days after, it is refused.
    let older = event(
        "PSID9",
        "PAGE7",
        now - 8 * 24 * HOUR_MS,
        json!({"message": {"mid": "m_9a", "text": "hello?"}}),
    );
    post_ok(&app, "/webhooks/messenger", &page(vec![older])).await;
    let older_id = next_conversation(&app, &api, &mut known).await;
    let refused = reply(&api, &older_id, "Too late").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.error_code(), "messaging_window_closed");
    // The channel's chat-expiration rule sets its window: one hour, so two hours is too late.
    let rule = api
        .send(
            reqwest::Method::PUT,
            "/api/chat-expiration-rules/messenger",
            Some(json!({"expiration_hours": 1})),
        )
        .await;
    assert_eq!(rule.status, StatusCode::OK, "{}", rule.body);
    let recent = event(
        "PSID10",
        "PAGE7",
        now - 2 * HOUR_MS,
        json!({"message": {"mid": "m_10a", "text": "hi"}}),
    );
    post_ok(&app, "/webhooks/messenger", &page(vec![recent])).await;
    let recent_id = next_conversation(&app, &api, &mut known).await;
    let refused = reply(&api, &recent_id, "Within 24 hours, outside the rule").await;
    assert_eq!(
        refused.error_code(),
        "messaging_window_closed",
        "{}",
        refused.body
    );
    // No echo or receipt was sent back out: two sends for two replies.
    assert_eq!(fake.sent_messages().await.len(), 2);
    app.stop();
}

#[tokio::test]
async fn instagram_story_mentions_reactions_reads_and_app_echoes() {
    let (fake, app, api) = social_app(
        "Insta Shop",
        vec![(
            "instagram",
            "ig-IG7",
            json!({"ig_user_id": "IG7", "access_token": fake_meta::fake_ig_token("IG7")}),
        )],
    )
    .await;
    let now = chrono::Utc::now().timestamp_millis();
    let insta = |events: Vec<Value>| json!({"object": "instagram", "entry": [{"id": "IG7", "time": now, "messaging": events}]});
    let mention = event(
        "IGSID7",
        "IG7",
        now,
        json!({"message": {"mid": "ig_7a", "attachments": [{"type": "story_mention", "payload": {"url": "https://cdn.example/story7"}}]}}),
    );
    post_ok(&app, "/webhooks/instagram", &insta(vec![mention])).await;
    let ig_id = next_conversation(&app, &api, &mut Vec::new()).await;
    let story = app
        .message_when(&api, &ig_id, |m| m["external_id"] == "ig_7a")
        .await;
    assert_eq!(
        (&story["type"], &story["media_url"]),
        (&json!("text"), &json!("https://cdn.example/story7"))
    );
    // The mention opened the window: the reply goes out on the Instagram Login API.
    let (ours, external) = reply_sent(&app, &api, &ig_id, "Thanks for the mention").await;
    let sends = fake.wait_for_messages(1, Duration::from_secs(20)).await;
    assert!(
        sends[0].path.ends_with("/IG7/messages"),
        "{}",
        sends[0].path
    );
    assert_eq!(
        sends[0].bearer_token(),
        Some(fake_meta::fake_ig_token("IG7").as_str())
    );
    // The customer reacts and reads; the business writes from the Instagram app.
    let later = chrono::Utc::now().timestamp_millis() + 1_000;
    post_ok(
        &app,
        "/webhooks/instagram",
        &insta(vec![
            event("IGSID7", "IG7", later, json!({"reaction": {"mid": external, "action": "react", "reaction": "love", "emoji": "\u{2764}"}})),
            event("IGSID7", "IG7", later + 1, json!({"read": {"mid": external}})),
            event("IG7", "IGSID7", later + 2, json!({"message": {"mid": "ig_7app", "text": "from the app", "is_echo": true}})),
        ]),
    )
    .await;
    app.message_when(&api, &ig_id, |m| {
        m["id"] == ours.as_str() && m["status"] == "read"
    })
    .await;
    let reaction = app
        .message_when(&api, &ig_id, |m| m["type"] == "reaction")
        .await;
    assert_eq!(reaction["content"], "\u{2764}");
    assert_eq!(reaction["reply_to_message_id"], ours.as_str());
    let echoed = app
        .message_when(&api, &ig_id, |m| m["external_id"] == "ig_7app")
        .await;
    assert_eq!(
        (&echoed["direction"], &echoed["status"], &echoed["content"]),
        (&json!("outbound"), &json!("sent"), &json!("from the app"))
    );
    assert_eq!(fake.sent_messages().await.len(), 1);

    // An echo that overtakes our send's own answer (Instagram echoes carry no metadata) is
    // first recorded as from another app, then withdrawn when the answer names it ours.
    assert_eq!(external, "m_fake000001", "the fake numbers its sends");
    let early = event(
        "IG7",
        "IGSID7",
        later + 3,
        json!({"message": {"mid": "m_fake000002", "text": "Second reply", "is_echo": true}}),
    );
    post_ok(&app, "/webhooks/instagram", &insta(vec![early])).await;
    app.message_when(&api, &ig_id, |m| m["external_id"] == "m_fake000002")
        .await;
    let (second, second_external) = reply_sent(&app, &api, &ig_id, "Second reply").await;
    assert_eq!(second_external, "m_fake000002");
    let listed = app
        .eventually(
            &api,
            &format!("/api/conversations/{ig_id}/messages"),
            |body| body["data"].as_array().is_some_and(|d| d.len() == 5),
        )
        .await;
    let carrying: Vec<&Value> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["external_id"] == "m_fake000002")
        .collect();
    assert_eq!(carrying.len(), 1, "{}", listed["data"]);
    assert_eq!(carrying[0]["id"], second.as_str());
    app.stop();
}
