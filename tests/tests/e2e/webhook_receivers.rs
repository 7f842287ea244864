//! The `/webhooks/*` receivers hardened (issue 12): provider payload variants, verify tokens per
//! channel, replayed Mailgun posts, authentication before the body is read, and their OpenAPI
//! entries.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::email::{conversations, email_app, messages_of, INBOX};

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
                json!({"page_id": "PAGE9", "page_name": "Shop", "page_access_token": "EAA-page"}),
            ),
            (
                "instagram",
                "ig-IG9",
                json!({"ig_user_id": "IG9", "username": "shop", "access_token": "IGQ-token"}),
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
