//! Customers' media reaches agents (contract §9, §20): WhatsApp media ids are fetched from the
//! Graph API with the account's token on first read and kept; Messenger and Instagram CDN
//! attachments are copied before their links expire. Other tenants get 404.

use omnistream_tests::fake_meta::{self, whatsapp_webhook, FakeMeta};
use omnistream_tests::{Client, TestApp, TEST_META_APP_SECRET};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::whatsapp::{spine, Spine};

/// The token `spine` gives the WhatsApp account.
const TOKEN: &str = "EAAG-secret-access-token-1234";
const PHONE_NUMBER_ID: &str = "106540352242977";
const CUSTOMER: &str = "6281234500077";

/// Bytes that look like a JPEG.
fn jpeg(seed: u8) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xd8, 0xff, 0xe0];
    bytes.extend((0..40_000u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

/// A WhatsApp webhook with the customer's `messages` (each gets `from` and `timestamp`).
fn customer_messages(messages: Vec<Value>) -> Value {
    let now = chrono::Utc::now().timestamp().to_string();
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|mut m| {
            m["from"] = json!(CUSTOMER);
            m["timestamp"] = json!(now);
            m
        })
        .collect();
    whatsapp_webhook(
        PHONE_NUMBER_ID,
        json!({"contacts": [{"profile": {"name": "Sari"}, "wa_id": CUSTOMER}], "messages": messages}),
    )
}

/// The only conversation of the tenant, once it has `count` messages: its id and messages.
async fn conversation_with(app: &TestApp, api: &Client, count: usize) -> (String, Vec<Value>) {
    let inbox = app
        .eventually(api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap().to_owned();
    let listed = app
        .eventually(api, &format!("/api/conversations/{id}/messages"), |b| {
            b["data"].as_array().is_some_and(|d| d.len() == count)
        })
        .await;
    (id, listed["data"].as_array().unwrap().clone())
}

/// The fake's media requests (metadata and downloads), as `METHOD path`.
async fn media_requests(fake: &FakeMeta, media_id: &str) -> Vec<(String, Option<String>)> {
    fake.requests()
        .await
        .into_iter()
        .filter(|r| r.path.ends_with(&format!("/{media_id}")) || r.path.contains("attachments"))
        .map(|r| (format!("{} {}", r.method, r.path), r.authorization))
        .collect()
}

#[tokio::test]
async fn a_customers_whatsapp_image_is_fetched_with_the_accounts_token_and_only_its_tenant_sees_it()
{
    let Spine {
        app, fake, admin, ..
    } = spine(PHONE_NUMBER_ID).await;
    let photo = jpeg(1);
    fake.add_whatsapp_media("1479537139650973", "image/jpeg", &photo, TOKEN)
        .await;
    let webhook = customer_messages(vec![json!({
        "id": "wamid.IMG1", "type": "image",
        "image": {"caption": "Barangnya rusak", "mime_type": "image/jpeg",
                  "sha256": "u7YhU4Ng/ZfB2DyUVm8Qk1XmwzDe8iKeMKwS3rz7Ctw=", "id": "1479537139650973"}
    })]);
    assert_eq!(
        app.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK
    );

    let api = admin.client(&app);
    let (conversation, messages) = conversation_with(&app, &api, 1).await;
    let message = &messages[0];
    assert_eq!(message["type"], "image");
    assert_eq!(message["content"], "Barangnya rusak");
    assert_eq!(message["media_mime_type"], "image/jpeg");
    let media_id = message["media_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the image has a media_id: {message}"))
        .to_owned();
    assert_eq!(message["media_url"], format!("/api/media/{media_id}"));

    let (status, headers, bytes) = api.get_bytes(&format!("/api/media/{media_id}")).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(headers["content-type"], "image/jpeg");
    assert!(bytes == photo, "the exact bytes Meta holds");
    let fetched = media_requests(&fake, "1479537139650973").await;
    assert_eq!(
        fetched.len(),
        2,
        "the media URL, then the file: {fetched:?}"
    );
    assert!(fetched[0].0.starts_with("GET /") && fetched[0].0.ends_with("/1479537139650973"));
    assert!(fetched[1]
        .0
        .starts_with("GET /whatsapp_business/attachments"));
    for (_, authorization) in &fetched {
        assert_eq!(
            authorization.as_deref(),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }

    // Kept: the second read is served from storage.
    let (status, _, again) = api.get_bytes(&format!("/api/media/{media_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(again == photo);
    assert_eq!(media_requests(&fake, "1479537139650973").await.len(), 2);

    // Another organization sees neither the media nor the message.
    let other = app.register("Toko Lain").await.client(&app);
    let (status, _, body) = other.get_bytes(&format!("/api/media/{media_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!String::from_utf8_lossy(&body).contains(TOKEN));
    let listed = other
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    assert_eq!(listed.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stickers_voice_notes_and_documents_keep_their_media_and_a_provider_failure_is_502() {
    let Spine {
        app, fake, admin, ..
    } = spine(PHONE_NUMBER_ID).await;
    let pdf = b"%PDF-1.4\n% invoice\n".repeat(500);
    let voice = b"OggS\0voice-note".repeat(300);
    let sticker = b"RIFF\0\0\0\0WEBPVP8 sticker".repeat(100);
    fake.add_whatsapp_media("880213454006325", "application/pdf", &pdf, TOKEN)
        .await;
    fake.add_whatsapp_media("1034417454880221", "audio/ogg; codecs=opus", &voice, TOKEN)
        .await;
    fake.add_whatsapp_media("2087212318463111", "image/webp", &sticker, TOKEN)
        .await;
    let webhook = customer_messages(vec![
        json!({"id": "wamid.DOC1", "type": "document", "document": {
            "caption": "Invoice", "filename": "INV-2024-10.pdf", "mime_type": "application/pdf",
            "sha256": "Zm9v", "id": "880213454006325"}}),
        json!({"id": "wamid.VOICE1", "type": "audio", "audio": {
            "mime_type": "audio/ogg; codecs=opus", "sha256": "YmFy", "id": "1034417454880221",
            "voice": true}}),
        json!({"id": "wamid.STICKER1", "type": "sticker", "sticker": {
            "mime_type": "image/webp", "sha256": "YmF6", "id": "2087212318463111",
            "animated": false}}),
        // Meta no longer has this one.
        json!({"id": "wamid.GONE1", "type": "image", "image": {
            "mime_type": "image/jpeg", "sha256": "cXV4", "id": "9999999999999"}}),
    ]);
    assert_eq!(
        app.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK
    );
    let api = admin.client(&app);
    let (_, messages) = conversation_with(&app, &api, 4).await;
    let media_of = |kind: &str| {
        let message = messages
            .iter()
            .find(|m| m["type"] == kind)
            .unwrap_or_else(|| panic!("a {kind} message in {messages:?}"));
        let id = message["media_id"]
            .as_str()
            .unwrap_or_else(|| panic!("the {kind} has a media_id: {message}"));
        assert_eq!(message["media_url"], format!("/api/media/{id}"));
        format!("/api/media/{id}")
    };

    let (status, headers, bytes) = api.get_bytes(&media_of("document")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == pdf);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("INV-2024-10.pdf"));
    let (status, headers, bytes) = api.get_bytes(&media_of("audio")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == voice);
    assert_eq!(headers["content-type"], "audio/ogg");
    let (status, headers, bytes) = api.get_bytes(&media_of("sticker")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == sticker);
    assert_eq!(headers["content-type"], "image/webp");

    let failed = api.get(&media_of("image")).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{}", failed.body);
    assert_eq!(failed.error_code(), "upstream_error");
    assert!(!failed.body.to_string().contains(TOKEN));
}

#[tokio::test]
async fn a_messenger_image_is_copied_once_and_served_after_its_cdn_link_expires() {
    let fake = FakeMeta::start().await;
    let graph = fake.base_url.clone();
    let app = TestApp::spawn_with(move |config| config.meta_graph_base_url = graph).await;
    let admin = app.register("Social Media Shop").await;
    let api = admin.client(&app);
    let created = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": "messenger", "account_key": "fb-PAGE9", "is_active": true,
                   "config": {"page_id": "PAGE9", "page_name": "Shop",
                              "page_access_token": fake_meta::fake_page_token("PAGE9")}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let photo = jpeg(9);
    let cdn_url = fake.serve_cdn("39912_n.jpg", "image/jpeg", &photo).await;
    let now = chrono::Utc::now().timestamp_millis();
    let payload = json!({"object": "page", "entry": [{"id": "PAGE9", "time": now, "messaging": [{
        "sender": {"id": "PSID9"}, "recipient": {"id": "PAGE9"}, "timestamp": now,
        "message": {"mid": "m_photo9", "attachments": [{"type": "image", "payload": {"url": cdn_url}}]}
    }]}]});
    let (body, signature) = fake_meta::signed(TEST_META_APP_SECRET, &payload);
    // Delivered twice, as Meta may: one message, one copy.
    for _ in 0..2 {
        let posted = app
            .http
            .post(format!("{}/webhooks/messenger", app.base_url))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &signature)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::OK);
    }
    let (_, messages) = conversation_with(&app, &api, 1).await;
    let message = &messages[0];
    assert_eq!(message["type"], "image");
    let media_id = message["media_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the image is stored: {message}"))
        .to_owned();
    assert_eq!(message["media_url"], format!("/api/media/{media_id}"));
    assert_eq!(message["media_mime_type"], "image/jpeg");

    fake.expire_cdn("39912_n.jpg").await;
    let (status, headers, bytes) = api.get_bytes(&format!("/api/media/{media_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "image/jpeg");
    assert!(bytes == photo, "the copy, not the expired link");
    // Give a late duplicate time to be processed, then check it copied nothing again.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let downloads = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.path.starts_with("/cdn/"))
        .count();
    assert_eq!(downloads, 1, "copied exactly once");

    let other = app.register("Another Shop").await.client(&app);
    let (status, _, _) = other.get_bytes(&format!("/api/media/{media_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
