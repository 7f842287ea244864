//! Instagram Login: connect, token handling, reconnects and refusals.

use omnistream_commands::channels::instagram::token_refresh::InstagramTokenRefresher;
use omnistream_commands::channels::meta::GraphClient;
use omnistream_commands::infra::secrets::SecretBox;
use omnistream_tests::fake_meta::{
    FAKE_IG_LONG_LIVED_EXPIRES_IN, FAKE_IG_LONG_LIVED_TOKEN, FAKE_IG_REFRESHED_TOKEN,
    FAKE_IG_SHORT_LIVED_TOKEN, FAKE_IG_USERNAME, FAKE_IG_USER_ID,
};
use omnistream_tests::{TestApp, TEST_ENCRYPTION_KEY};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{
    accounts, assert_each_invalid, connect, masked, only, params, setup, Setup, IG_APP_ID,
    IG_APP_SECRET, IG_REDIRECT,
};

/// `token_expires_at` of a listed account.
fn expires_at(account: &Value) -> chrono::DateTime<chrono::Utc> {
    account["config"]["token_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The stored (encrypted) config of the Instagram account.
async fn stored_config(app: &TestApp) -> Value {
    sqlx::query_scalar("SELECT config FROM integration_accounts WHERE channel = 'instagram'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn instagram_connect_saves_an_ig_account_with_the_long_lived_token() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let connected = connect(&api, "instagram", "AQ-instagram-1", IG_REDIRECT).await;
    assert_eq!(connected.status, StatusCode::OK, "{}", connected.body);
    let key = format!("ig-{FAKE_IG_USER_ID}");
    assert_eq!(
        connected.body,
        json!({"success": true, "connected": [{"account_key": key, "username": FAKE_IG_USERNAME}]})
    );

    let exchange = only(&fake, "POST", "/oauth/access_token").await;
    let form = params(exchange.body.as_str());
    assert_eq!(form["client_id"], IG_APP_ID);
    assert_eq!(form["client_secret"], IG_APP_SECRET);
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["redirect_uri"], IG_REDIRECT);
    assert_eq!(form["code"], "AQ-instagram-1");
    let long = only(&fake, "GET", "/v21.0/access_token").await;
    let query = params(long.query.as_deref());
    assert_eq!(query["grant_type"], "ig_exchange_token");
    assert_eq!(query["access_token"], FAKE_IG_SHORT_LIVED_TOKEN);
    assert_eq!(query["client_secret"], IG_APP_SECRET);
    let profile = only(&fake, "GET", "/v21.0/me").await;
    assert_eq!(profile.bearer_token(), Some(FAKE_IG_LONG_LIVED_TOKEN));
    let subscribe = only(&fake, "POST", "/v21.0/me/subscribed_apps").await;
    assert_eq!(subscribe.bearer_token(), Some(FAKE_IG_LONG_LIVED_TOKEN));
    assert_eq!(
        params(subscribe.query.as_deref())["subscribed_fields"],
        "messages,messaging_postbacks,messaging_seen,message_reactions"
    );

    let saved = accounts(&api, "instagram").await;
    assert_eq!(saved.len(), 1);
    let account = &saved[0];
    assert_eq!(account["account_key"], key.as_str());
    assert_eq!(account["display_name"], FAKE_IG_USERNAME);
    assert_eq!(account["is_active"], true);
    assert_eq!(account["is_default"], true, "the channel's first account");
    assert_eq!(account["config"]["ig_user_id"], FAKE_IG_USER_ID);
    assert_eq!(account["config"]["username"], FAKE_IG_USERNAME);
    assert_eq!(
        account["config"]["access_token"],
        masked(FAKE_IG_LONG_LIVED_TOKEN)
    );
    let expires = expires_at(account);
    let expected = chrono::Utc::now() + chrono::Duration::seconds(FAKE_IG_LONG_LIVED_EXPIRES_IN);
    assert!((expected - expires).num_seconds().abs() < 120, "{expires}");
    assert!(
        !stored_config(&app)
            .await
            .to_string()
            .contains(FAKE_IG_LONG_LIVED_TOKEN),
        "encrypted at rest"
    );
    let logs = api
        .get("/api/activity-logs?action=integration_account.connected")
        .await;
    assert_eq!(logs.body["total"], 1, "{}", logs.body);
    assert_eq!(logs.body["data"][0]["details"]["channel"], "instagram");

    // Reconnecting (a deactivated, renamed account; the older flat token answer) updates it.
    let id = account["id"].as_str().unwrap();
    let patched = api
        .patch(
            &format!("/api/integrations/accounts/{id}"),
            json!({"is_active": false, "display_name": "Shop on IG"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let again = connect(&api, "instagram", "legacy-AQ-instagram-2", IG_REDIRECT).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let saved = accounts(&api, "instagram").await;
    assert_eq!(saved.len(), 1, "updated, not duplicated");
    assert_eq!(saved[0]["id"], id);
    assert_eq!(saved[0]["is_active"], true, "reactivated");
    assert_eq!(
        saved[0]["display_name"], "Shop on IG",
        "the chosen name is kept"
    );
}

#[tokio::test]
async fn instagram_connect_with_a_refused_code_or_a_bad_body_saves_nothing() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let refused = connect(&api, "instagram", "bad-code", IG_REDIRECT).await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert_eq!(refused.error_code(), "upstream_error");
    assert_eq!(refused.body["error"]["details"]["provider"], "meta");
    let text = refused.body.to_string();
    assert!(
        !text.contains(IG_APP_SECRET) && !text.contains("bad-code"),
        "{text}"
    );
    assert_eq!(fake.requests().await.len(), 1, "stopped after the exchange");
    assert!(accounts(&api, "instagram").await.is_empty());

    // A code works once: the second use fails at Meta, and nothing more is saved.
    assert_eq!(
        connect(&api, "instagram", "AQ-once", IG_REDIRECT)
            .await
            .status,
        StatusCode::OK
    );
    let reused = connect(&api, "instagram", "AQ-once", IG_REDIRECT).await;
    assert_eq!(reused.status, StatusCode::BAD_GATEWAY);
    assert_eq!(accounts(&api, "instagram").await.len(), 1);

    fake.clear_requests().await;
    let cases = vec![
        (json!({"redirect_uri": IG_REDIRECT}), "code"),
        (json!({"code": "  ", "redirect_uri": IG_REDIRECT}), "code"),
        (json!({"code": "AQ-2"}), "redirect_uri"),
        (
            json!({"code": "AQ-2", "redirect_uri": "app.example/cb"}),
            "redirect_uri",
        ),
        (
            json!({"code": "AQ-2", "redirect_uri": "https://"}),
            "redirect_uri",
        ),
        (
            json!({"code": "AQ-2", "redirect_uri": IG_REDIRECT, "tenant_id": "x"}),
            "tenant_id",
        ),
    ];
    assert_each_invalid(&api, "/api/integrations/instagram/connect", cases).await;
    assert!(fake.requests().await.is_empty(), "nothing reaches Meta");
}

#[tokio::test]
async fn expiring_instagram_tokens_are_refreshed_and_fresh_ones_are_left_alone() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let connected = connect(&api, "instagram", "AQ-instagram-refresh", IG_REDIRECT).await;
    assert_eq!(connected.status, StatusCode::OK, "{}", connected.body);
    let refresher = InstagramTokenRefresher {
        pool: app.pool.clone(),
        secrets: SecretBox::new(TEST_ENCRYPTION_KEY),
        instagram: GraphClient::new(format!("{}/v21.0", fake.base_url)),
    };
    let now = chrono::Utc::now();
    // Sixty days left: nothing to do.
    assert_eq!(refresher.refresh_due(now).await.unwrap(), 0);
    // Five days before expiry the token is traded for a fresh one, kept encrypted.
    let later =
        now + chrono::Duration::seconds(FAKE_IG_LONG_LIVED_EXPIRES_IN) - chrono::Duration::days(5);
    assert_eq!(refresher.refresh_due(later).await.unwrap(), 1);
    let refresh = only(&fake, "GET", "/v21.0/refresh_access_token").await;
    let query = params(refresh.query.as_deref());
    assert_eq!(query["grant_type"], "ig_refresh_token");
    assert_eq!(query["access_token"], FAKE_IG_LONG_LIVED_TOKEN);
    let saved = accounts(&api, "instagram").await;
    assert_eq!(
        saved[0]["config"]["access_token"],
        masked(FAKE_IG_REFRESHED_TOKEN)
    );
    let expires = expires_at(&saved[0]);
    let expected = later + chrono::Duration::seconds(FAKE_IG_LONG_LIVED_EXPIRES_IN);
    assert!((expected - expires).num_seconds().abs() < 5, "{expires}");
    assert!(!stored_config(&app)
        .await
        .to_string()
        .contains(FAKE_IG_REFRESHED_TOKEN));
    // The new expiry is far off again: a second round refreshes nothing.
    assert_eq!(refresher.refresh_due(later).await.unwrap(), 0);
}
