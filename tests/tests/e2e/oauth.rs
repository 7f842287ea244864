//! Instagram Login and Facebook Login (Messenger) onboarding end to end: auth configs, the code
//! and token exchanges against the fake Graph API, the saved accounts and their masked tokens,
//! Page subscriptions, disconnects, persistent menus, validation, roles and tenant isolation.
//! This module holds the shared setup and the checks common to both; the flows are in
//! [`instagram`] and [`messenger`].

mod instagram;
mod messenger;

use std::collections::HashMap;

use omnistream_gateway::app::config::Secret;
use omnistream_tests::fake_meta::{FakeMeta, RecordedRequest};
use omnistream_tests::{Client, Member, Response, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const IG_APP_ID: &str = "test-instagram-app-id";
const IG_APP_SECRET: &str = "test-instagram-app-secret";
const IG_REDIRECT: &str = "https://app.example/oauth/instagram";
const FB_REDIRECT: &str = "https://app.example/oauth/messenger";

struct Setup {
    app: TestApp,
    fake: FakeMeta,
    admin: Member,
}

/// An app whose Graph, Instagram Graph and Instagram OAuth base URLs are all the fake.
async fn setup() -> Setup {
    let fake = FakeMeta::start().await;
    let base = fake.base_url.clone();
    let app = TestApp::spawn_with(move |config| {
        config.meta_graph_base_url = base.clone();
        config.instagram_base_url = format!("{base}/v21.0");
        config.instagram_oauth_base_url = base;
        config.instagram_app_id = Some(IG_APP_ID.into());
        config.instagram_app_secret = Some(Secret::new(IG_APP_SECRET));
        config.messenger_config_id = Some("test-messenger-config-id".into());
    })
    .await;
    let admin = app.register("Social Shop").await;
    Setup { app, fake, admin }
}

/// `POST /api/integrations/{channel}/connect` with an OAuth `code` and `redirect_uri`.
async fn connect(api: &Client, channel: &str, code: &str, redirect_uri: &str) -> Response {
    api.post(
        &format!("/api/integrations/{channel}/connect"),
        json!({"code": code, "redirect_uri": redirect_uri}),
    )
    .await
}

/// Posts each body to `path`: 400 `validation_error` naming its field, every time.
async fn assert_each_invalid(api: &Client, path: &str, cases: Vec<(Value, &str)>) {
    for (body, field) in cases {
        let response = api.post(path, body.clone()).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            response.body
        );
        assert_eq!(response.error_code(), "validation_error");
        assert!(
            response.body["error"]["details"][field].is_string(),
            "{body}: {}",
            response.body
        );
    }
}

/// The endpoints of one Messenger account: disconnect, and reading and deleting the menu.
fn messenger_account_endpoints(id: &str) -> [(&'static str, String, Option<Value>); 3] {
    [
        (
            "POST",
            format!("/api/integrations/messenger/disconnect/{id}"),
            None,
        ),
        (
            "GET",
            format!("/api/integrations/messenger/{id}/persistent-menu"),
            None,
        ),
        (
            "POST",
            format!("/api/integrations/messenger/{id}/persistent-menu"),
            Some(json!({"delete": true})),
        ),
    ]
}

fn params(raw: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// The one recorded request with `method` whose path ends with `suffix`.
async fn only(fake: &FakeMeta, method: &str, suffix: &str) -> RecordedRequest {
    let matching: Vec<RecordedRequest> = fake
        .requests()
        .await
        .into_iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .collect();
    assert_eq!(matching.len(), 1, "{method} …{suffix}: {matching:?}");
    matching.into_iter().next().unwrap()
}

/// The contract's mask: `****` + the last 4 characters, or just `****` under 16 characters.
fn masked(secret: &str) -> String {
    if secret.len() < 16 {
        return "****".into();
    }
    format!("****{}", &secret[secret.len() - 4..])
}

async fn accounts(api: &Client, channel: &str) -> Vec<Value> {
    let listed = api
        .get(&format!("/api/integrations/accounts?channel={channel}"))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    listed.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn auth_configs_name_the_apps_and_every_oauth_endpoint_is_admin_only() {
    let Setup { app, admin, .. } = setup().await;
    let api = admin.client(&app);
    let instagram = api.get("/api/integrations/instagram/auth-config").await;
    assert_eq!(instagram.status, StatusCode::OK);
    assert_eq!(instagram.body, json!({"app_id": IG_APP_ID}));
    assert_eq!(
        api.get("/api/integrations/messenger/auth-config")
            .await
            .body,
        json!({"app_id": "test-meta-app-id", "config_id": "test-messenger-config-id"})
    );

    let id = uuid::Uuid::new_v4().to_string();
    let oauth = json!({"code": "AQ-1", "redirect_uri": IG_REDIRECT});
    for role in ["agent", "supervisor"] {
        let member = app.create_agent(&admin, role, json!({})).await.client(&app);
        let oauth_endpoints = [
            (
                "GET",
                "/api/integrations/instagram/auth-config".to_owned(),
                None,
            ),
            (
                "POST",
                "/api/integrations/instagram/connect".to_owned(),
                Some(oauth.clone()),
            ),
            (
                "GET",
                "/api/integrations/messenger/auth-config".to_owned(),
                None,
            ),
            (
                "POST",
                "/api/integrations/messenger/connect".to_owned(),
                Some(oauth.clone()),
            ),
            (
                "POST",
                "/api/integrations/messenger/pages".to_owned(),
                Some(json!({"pages": [{"page_id": "1", "page_name": "x"}], "user_token": "t"})),
            ),
        ];
        for (method, path, body) in oauth_endpoints
            .into_iter()
            .chain(messenger_account_endpoints(&id))
        {
            let response = member.send(method.parse().unwrap(), &path, body).await;
            assert_eq!(
                response.status,
                StatusCode::FORBIDDEN,
                "{role} {method} {path}: {}",
                response.body
            );
        }
    }

    // Unconfigured: the same answer as the WhatsApp embedded-signup config (nulls), and a
    // connect that cannot exchange codes says so.
    let bare = TestApp::spawn().await;
    let bare_admin = bare.register("Bare").await.client(&bare);
    assert_eq!(
        bare_admin
            .get("/api/integrations/instagram/auth-config")
            .await
            .body,
        json!({"app_id": null})
    );
    assert_eq!(
        bare_admin
            .get("/api/integrations/messenger/auth-config")
            .await
            .body,
        json!({"app_id": "test-meta-app-id", "config_id": "test-meta-config-id"}),
        "MESSENGER_CONFIG_ID falls back to META_CONFIG_ID"
    );
    let unconfigured = connect(&bare_admin, "instagram", "AQ-1", IG_REDIRECT).await;
    assert_eq!(unconfigured.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unconfigured.error_code(), "service_unavailable");
}
