//! The `/webhooks/*` receivers hardened (issue 12): provider payload variants, verify tokens per
//! channel, replayed Mailgun posts, authentication before the body is read, and their OpenAPI
//! entries.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::email::{conversations, email_app, mailgun_post, messages_of, INBOX};

#[tokio::test]
async fn a_postmark_attachment_given_as_data_is_kept_like_one_given_as_content() {
    let (app, api) = email_app().await;
    let posted = app
        .post_email(
            "application/json",
            json!({
                "FromFull": {"Email": "ana@example.org", "Name": "Ana"},
                "ToFull": [{"Email": INBOX, "Name": "Shop"}],
                "Subject": "Test from Postmark",
                "TextBody": "Two files",
                "MessageID": "pm-data-1",
                "Attachments": [
                    {"Name": "a.pdf", "ContentType": "application/pdf", "Content": "JVBERi0xLjQ=", "ContentLength": 8},
                    {"Name": "b.txt", "ContentType": "text/plain", "Data": "aGVsbG8=", "ContentLength": 5}
                ]
            })
            .to_string(),
        )
        .await;
    assert_eq!(posted.status(), StatusCode::OK);
    assert_eq!(posted.json::<Value>().await.unwrap()["status"], "ok");
    let listed = conversations(&app, &api, 1).await;
    let conversation = listed["data"][0]["id"].as_str().unwrap();
    let message = messages_of(&app, &api, conversation, 1).await.remove(0);
    let files: Vec<(&str, i64)> = message["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["filename"].as_str().unwrap(), a["size"].as_i64().unwrap()))
        .collect();
    assert_eq!(files, vec![("a.pdf", 8), ("b.txt", 5)], "{message}");
    app.stop();
}

/// `GET <path>` with Meta's subscription handshake for `token`: the status and the body.
async fn handshake(
    app: &omnistream_tests::TestApp,
    path: &str,
    token: &str,
) -> (StatusCode, String) {
    let response = app
        .http
        .get(format!("{}{path}", app.base_url))
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", token),
            ("hub.challenge", "8675309"),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn each_meta_receiver_accepts_the_verify_tokens_of_its_own_channels_accounts() {
    let (_fake, app, api) = crate::messaging::social_app(
        "Token Shop",
        vec![
            (
                "whatsapp",
                "wa-106540352242999",
                json!({"phone_number_id": "106540352242999", "waba_id": "100000000000001",
                       "access_token": "EAAG-token", "pin": "123456"}),
            ),
            (
                "messenger",
                "fb-PAGE9",
                json!({"page_id": "PAGE9", "page_name": "Shop", "page_access_token": omnistream_tests::fake_meta::fake_page_token("PAGE9")}),
            ),
            (
                "instagram",
                "ig-IG9",
                json!({"ig_user_id": "IG9", "username": "shop", "access_token": omnistream_tests::fake_meta::fake_ig_token("IG9")}),
            ),
        ],
    )
    .await;
    let accounts = api.get("/api/integrations/accounts").await;
    let token_of = |channel: &str| {
        accounts.body["data"]
            .as_array()
            .or(accounts.body.as_array())
            .unwrap()
            .iter()
            .find(|a| a["channel"] == channel)
            .and_then(|a| a["verify_token"].as_str())
            .unwrap_or_else(|| panic!("a {channel} account with a verify token: {}", accounts.body))
            .to_owned()
    };
    let tokens = [
        ("/webhooks/meta", token_of("whatsapp")),
        ("/webhooks/messenger", token_of("messenger")),
        ("/webhooks/instagram", token_of("instagram")),
    ];
    for (path, own) in &tokens {
        for token in [own.as_str(), omnistream_tests::TEST_META_VERIFY_TOKEN] {
            assert_eq!(
                handshake(&app, path, token).await,
                (StatusCode::OK, "8675309".to_owned()),
                "{path} accepts {token}"
            );
        }
        for (other, foreign) in &tokens {
            if other != path {
                let (status, _) = handshake(&app, path, foreign).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{path} refuses {other}'s token"
                );
            }
        }
        let (status, _) = handshake(&app, path, "nope").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    app.stop();
}

#[tokio::test]
async fn a_mailgun_signature_is_accepted_once_and_never_for_another_message() {
    let (app, api) = email_app().await;
    let post = |body: String| {
        reqwest::Client::new()
            .post(format!("{}/webhooks/email", app.base_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let key = omnistream_tests::TEST_MAILGUN_SIGNING_KEY;
    let now = chrono::Utc::now().timestamp();
    // A token of an earlier, expired window is pruned when a new one is recorded.
    sqlx::query("INSERT INTO mailgun_webhook_tokens (token, expires_at) VALUES ('old-token', now() - interval '1 minute')")
        .execute(&app.pool)
        .await
        .unwrap();
    let genuine = mailgun_post(key, now, "Eko <eko@example.com>", "mg1@example.com");
    let first = post(genuine.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.json::<Value>().await.unwrap()["status"], "ok");

    // The same post replayed, and the captured signature (same timestamp and token) on
    // another message, are refused.
    let forged = mailgun_post(
        key,
        now,
        "Mallory <mallory@example.com>",
        "evil@example.com",
    );
    for replay in [genuine, forged] {
        let refused = post(replay).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            refused.json::<Value>().await.unwrap()["error"]["code"],
            "invalid_signature"
        );
    }
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token FROM mailgun_webhook_tokens")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        tokens,
        vec![format!("token{now}")],
        "the old token is pruned"
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbound_webhooks WHERE provider = 'email'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 1, "only the genuine post is stored");

    // A new signature (a new token) is accepted again.
    let next = post(mailgun_post(
        key,
        now + 1,
        "Eko <eko@example.com>",
        "mg2@example.com",
    ))
    .await
    .unwrap();
    assert_eq!(next.status(), StatusCode::OK);
    conversations(&app, &api, 2).await;
    app.stop();
}

/// Sends `head` (a request line and headers) and a few bytes of a body it promises to be much
/// longer, then waits at most `wait` for the status line of the answer (`None`: no answer, the
/// server is waiting for the rest of the body).
async fn answer_within(
    app: &omnistream_tests::TestApp,
    head: &str,
    wait: std::time::Duration,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("{head}Host: {address}\r\n\r\nFrom: a@example.com\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 1024];
    let read = tokio::time::timeout(wait, stream.read(&mut answer))
        .await
        .ok()?
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    Some(answer.lines().next().unwrap_or_default().to_owned())
}

/// [`answer_within`] 5 s, which must be enough.
async fn answer_to_a_partial_body(app: &omnistream_tests::TestApp, head: &str) -> String {
    answer_within(app, head, std::time::Duration::from_secs(5))
        .await
        .expect("an answer before the body was sent")
}

const THIRTY_MIB: usize = 30 * 1024 * 1024;

#[tokio::test]
async fn requests_that_cannot_be_authentic_are_refused_before_their_body_is_read() {
    let (app, _api) = email_app().await;
    let cases = [
        (
            "a wrong secret",
            format!("POST /webhooks/email HTTP/1.1\r\nContent-Type: message/rfc822\r\nX-Webhook-Secret: wrong\r\nContent-Length: {THIRTY_MIB}\r\n"),
            "401",
        ),
        (
            "no secret and no form that could carry a Mailgun signature",
            format!("POST /webhooks/email HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {THIRTY_MIB}\r\n"),
            "401",
        ),
        (
            "a Meta post without its signature header",
            "POST /webhooks/meta HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n".to_owned(),
            "401",
        ),
        (
            "an email longer than the limit",
            format!("POST /webhooks/email HTTP/1.1\r\nContent-Type: message/rfc822\r\nX-Webhook-Secret: {}\r\nContent-Length: {}\r\n",
                omnistream_tests::TEST_EMAIL_WEBHOOK_SECRET, 41 * 1024 * 1024),
            "413",
        ),
    ];
    for (case, head, status) in cases {
        let line = answer_to_a_partial_body(&app, &head).await;
        assert!(line.contains(status), "{case}: {line}");
    }
    app.stop();
}

#[tokio::test]
async fn unauthenticated_form_bodies_being_read_at_once_are_bounded() {
    use tokio::io::AsyncWriteExt;
    let (app, _api) = email_app().await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /webhooks/email HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {THIRTY_MIB}\r\n\r\n--b\r\n"
    );
    // Two large unauthenticated posts whose bodies never finish hold 60 of the 80 MiB budget.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let head = format!(
        "POST /webhooks/email HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {THIRTY_MIB}\r\n"
    );
    let line = answer_to_a_partial_body(&app, &head).await;
    assert!(line.contains("429"), "a third is refused at once: {line}");
    // An authenticated email is never held up by them; once they are gone, the budget is free
    // again and the next large unauthenticated post is read rather than refused.
    let posted = app
        .post_email(
            "message/rfc822",
            crate::email::mime("a@example.com", "Hi", "b1@example.com", None, "<p>hi</p>"),
        )
        .await;
    assert_eq!(posted.status(), StatusCode::OK);
    drop(held);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Some(line) = answer_within(&app, &head, std::time::Duration::from_millis(500)).await {
        assert!(line.contains("429"), "{line}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the budget is released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.stop();
}

#[tokio::test]
async fn the_openapi_document_lists_the_seven_webhook_receivers() {
    let app = omnistream_tests::TestApp::spawn().await;
    let document = app.anonymous().get("/api/openapi.json").await;
    assert_eq!(document.status, StatusCode::OK);
    let paths = &document.body["paths"];
    let mut receivers = Vec::new();
    for path in [
        "/webhooks/meta",
        "/webhooks/email",
        "/webhooks/messenger",
        "/webhooks/instagram",
    ] {
        for method in ["get", "post"] {
            if let Some(operation) = paths[path].get(method) {
                assert_eq!(operation["tags"][0], "Webhooks", "{method} {path}");
                assert!(operation["responses"]["200"].is_object(), "{method} {path}");
                receivers.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert_eq!(
        receivers,
        [
            "GET /webhooks/meta",
            "POST /webhooks/meta",
            "POST /webhooks/email",
            "GET /webhooks/messenger",
            "POST /webhooks/messenger",
            "GET /webhooks/instagram",
            "POST /webhooks/instagram",
        ]
    );
    assert!(paths["/webhooks/email"]["post"]["responses"]["401"].is_object());
    app.stop();
}
