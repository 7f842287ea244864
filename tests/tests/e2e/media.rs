//! The Media tag: upload validation (type, size, fields, conversation), reading under the
//! conversation visibility rule and tenant isolation, `media_id` in sends, and the signed links
//! Meta fetches a reply's media from.

use std::time::Duration;

use omnistream_tests::fake_meta::whatsapp_text_webhook;
use omnistream_tests::multipart::Part;
use reqwest::StatusCode;
use serde_json::json;

use omnistream_tests::{Member, TestApp};

use crate::email::{conversations, email_app, mime, INBOX};
use crate::whatsapp::{spine, Spine};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01";

#[tokio::test]
async fn uploads_are_checked_for_type_size_fields_and_conversation() {
    let (app, api) = email_app().await;
    let upload = |parts: Vec<Part<'static>>| {
        let api = api.clone();
        async move { api.post_form("/api/media/upload", &parts).await }
    };

    let html = upload(vec![Part::file(
        "page.html",
        "text/html",
        b"<script>x</script>",
    )])
    .await;
    assert_eq!(
        html.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        html.body
    );
    assert_eq!(html.error_code(), "unsupported_media_type");
    let svg = upload(vec![Part::file("x.svg", "image/svg+xml", b"<svg/>")]).await;
    assert_eq!(svg.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let json_body = api.post("/api/media/upload", json!({"file": "x"})).await;
    assert_eq!(json_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let missing = upload(vec![Part::text(
        "conversation_id",
        "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d",
    )])
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.body);
    assert_eq!(missing.body["error"]["details"]["file"], "is required");
    let unknown = upload(vec![
        Part::file("a.png", "image/png", PNG),
        Part::text("tenant_id", "x"),
    ])
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.body["error"]["details"]["tenant_id"],
        "unknown field"
    );
    let malformed = upload(vec![
        Part::file("a.png", "image/png", PNG),
        Part::text("conversation_id", "nope"),
    ])
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let nowhere = upload(vec![
        Part::file("a.png", "image/png", PNG),
        Part::text("conversation_id", "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"),
    ])
    .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);

    // One byte over 25 MiB is refused (and nothing is kept); 25 MiB exactly is the limit.
    let huge: &'static [u8] = Box::leak(vec![b'a'; 25 * 1024 * 1024 + 1].into_boxed_slice());
    let too_large = upload(vec![Part::file("big.txt", "text/plain", huge)]).await;
    assert_eq!(
        too_large.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        too_large.body
    );
    assert_eq!(too_large.error_code(), "payload_too_large");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM media")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    let incoming = app.data_dir.join("media/.incoming");
    let leftovers = std::fs::read_dir(&incoming).map_or(0, |dir| dir.count());
    assert_eq!(leftovers, 0, "no temporary file is left behind");

    // Uploads are not held to the API's 2 MiB body limit.
    let photo: &'static [u8] = Box::leak(vec![7u8; 3 * 1024 * 1024].into_boxed_slice());
    let large = upload(vec![Part::file("photo.jpg", "image/jpeg", photo)]).await;
    assert_eq!(large.status, StatusCode::CREATED, "{}", large.body);
    assert_eq!(large.body["size"], photo.len());

    // An octet stream is named by its extension; the answer is the stored file.
    let ok = upload(vec![Part::file(
        "../Report.PDF",
        "application/octet-stream",
        b"%PDF-1.4 x",
    )])
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let id = ok.body["id"].as_str().unwrap();
    assert_eq!(ok.body["url"], format!("/api/media/{id}"));
    assert_eq!(ok.body["filename"], "Report.PDF");
    assert_eq!(ok.body["mime_type"], "application/pdf");
    assert_eq!(ok.body["size"], 10);
    let (status, headers, bytes) = api.get_bytes(&format!("/api/media/{id}")).await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::OK, &b"%PDF-1.4 x"[..])
    );
    assert_eq!(headers["content-type"], "application/pdf");
    let (status, _, _) = api.get_bytes("/api/media/not-a-uuid").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop();
}

/// An app with one tenant whose email account receives at [`INBOX`]; returns its admin.
async fn email_tenant() -> (TestApp, Member) {
    let app = TestApp::spawn().await;
    let admin = app.register("Media Shop").await;
    let account = admin
        .client(&app)
        .post(
            "/api/integrations/accounts",
            json!({"channel": "email", "account_key": INBOX, "is_active": true, "config": {"from_address": INBOX}}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED, "{}", account.body);
    (app, admin)
}

#[tokio::test]
async fn media_of_a_conversation_is_read_only_by_those_who_see_it_and_never_by_another_tenant() {
    let (app, admin) = email_tenant().await;
    let api = admin.client(&app);
    app.post_email(
        "message/rfc822",
        mime(
            "Budi <budi@example.com>",
            "Hello",
            "v1@example.com",
            None,
            "<p>hi</p>",
        ),
    )
    .await;
    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap().to_owned();
    let upload = |client: omnistream_tests::Client, conversation: Option<String>| async move {
        let mut parts = vec![Part::file("a.png", "image/png", PNG)];
        if let Some(id) = &conversation {
            parts.push(Part::text("conversation_id", id));
        }
        client.post_form("/api/media/upload", &parts).await
    };
    let attached = upload(api.clone(), Some(conversation.clone())).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{}", attached.body);
    let attached = format!("/api/media/{}", attached.body["id"].as_str().unwrap());
    let loose = upload(api.clone(), None).await;
    let loose = format!("/api/media/{}", loose.body["id"].as_str().unwrap());

    // Unassigned and without a division, the conversation is visible to a plain agent, and so
    // is its media; once it is assigned to the admin, it is not. Media of no conversation is
    // the whole organization's.
    let agent = app
        .create_agent(&admin, "agent", json!({}))
        .await
        .client(&app);
    assert_eq!(agent.get_bytes(&attached).await.0, StatusCode::OK);
    let assigned = api
        .patch(
            &format!("/api/conversations/{conversation}/assign"),
            json!({"agent_id": admin.agent_id}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(agent.get_bytes(&attached).await.0, StatusCode::NOT_FOUND);
    assert_eq!(agent.get_bytes(&loose).await.0, StatusCode::OK);
    assert_eq!(api.get_bytes(&attached).await.0, StatusCode::OK);
    let hidden = upload(agent.clone(), Some(conversation.clone())).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{}", hidden.body);

    // Uploading needs conversations.reply; reading needs only a credential.
    let role = api
        .post(
            "/api/roles",
            json!({"name": "Viewer", "permissions": ["conversations.view"]}),
        )
        .await;
    assert_eq!(role.status, StatusCode::CREATED, "{}", role.body);
    let viewer = app
        .create_agent(&admin, "agent", json!({"custom_role_id": role.body["id"]}))
        .await
        .client(&app);
    assert_eq!(
        upload(viewer.clone(), None).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(viewer.get_bytes(&loose).await.0, StatusCode::OK);

    // Another organization can neither read these files nor send them; and this one cannot
    // send another organization's file, or one that does not exist.
    let other = app.register("Other Shop").await.client(&app);
    for path in [&attached, &loose] {
        assert_eq!(other.get_bytes(path).await.0, StatusCode::NOT_FOUND);
    }
    let foreign = upload(other.clone(), None).await;
    let foreign = foreign.body["id"].as_str().unwrap().to_owned();
    for media_id in [foreign, uuid::Uuid::new_v4().to_string()] {
        let sent = api
            .post(
                &format!("/api/conversations/{conversation}/messages"),
                json!({"type": "image", "media_id": media_id}),
            )
            .await;
        assert_eq!(
            sent.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            sent.body
        );
        assert_eq!(sent.error_code(), "invalid_media");
    }
    let both = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"type": "image", "media_id": loose.trim_start_matches("/api/media/"), "media_url": "https://cdn.example/a.png"}),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST, "{}", both.body);
    app.stop();
}

#[tokio::test]
async fn a_whatsapp_reply_with_media_id_hands_meta_a_signed_link_to_the_stored_bytes() {
    let Spine {
        app, fake, admin, ..
    } = spine("106540352242933").await;
    let api = admin.client(&app);
    let webhook = whatsapp_text_webhook(
        "106540352242933",
        "6281234500000",
        "Sari",
        "wamid.MEDIA1",
        "Kirim fotonya",
        chrono::Utc::now().timestamp(),
    );
    app.post_meta_webhook(&webhook).await;
    let inbox = app
        .eventually(&api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let conversation = inbox["data"][0]["id"].as_str().unwrap().to_owned();
    let uploaded = api
        .post_form(
            "/api/media/upload",
            &[Part::file("photo.png", "image/png", PNG)],
        )
        .await;
    let media_id = uploaded.body["id"].as_str().unwrap().to_owned();

    let sent = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            json!({"type": "image", "media_id": media_id, "content": "Ini fotonya"}),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(sent.body["media_url"], format!("/api/media/{media_id}"));
    let request = fake
        .wait_for_messages(1, Duration::from_secs(20))
        .await
        .remove(0);
    assert_eq!(request.body["type"], "image");
    assert_eq!(request.body["image"]["caption"], "Ini fotonya");
    let link = request.body["image"]["link"].as_str().unwrap().to_owned();
    let path = link
        .split_once("/api/media/")
        .map(|(_, rest)| format!("/api/media/{rest}"))
        .unwrap();
    assert!(
        path.starts_with(&format!("/api/media/{media_id}?")),
        "{link}"
    );

    // Meta fetches it without credentials; a changed signature or no signature gets nothing.
    let (status, headers, bytes) = app.anonymous().get_bytes(&path).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    assert_eq!(bytes, PNG);
    assert_eq!(headers["content-type"], "image/png");
    let forged = format!(
        "{}0",
        path.trim_end_matches(|c: char| c.is_ascii_hexdigit())
    );
    let (status, _, _) = app.anonymous().get_bytes(&forged).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = app
        .anonymous()
        .get_bytes(&format!("/api/media/{media_id}"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop();
}
