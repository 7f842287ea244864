//! Facebook Login for Messenger: the Page list, Page accounts, disconnects, persistent menus and
//! the account checks of the Page endpoints.

use omnistream_tests::fake_meta::{
    fake_page_token, FAKE_FB_LONG_USER_TOKEN, FAKE_FB_SHORT_USER_TOKEN, FAKE_PAGES,
};
use omnistream_tests::fake_meta::{FakeMeta, RecordedRequest};
use omnistream_tests::{Client, Response, TEST_META_APP_SECRET};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{
    accounts, assert_each_invalid, connect, masked, messenger_account_endpoints, only, params,
    setup, Setup, FB_REDIRECT,
};

async fn connect_pages(api: &Client) -> Vec<Value> {
    let pages: Vec<Value> = FAKE_PAGES
        .iter()
        .map(|(id, name)| json!({"page_id": id, "page_name": name}))
        .collect();
    let connected = api
        .post(
            "/api/integrations/messenger/pages",
            json!({"pages": pages, "user_token": FAKE_FB_LONG_USER_TOKEN}),
        )
        .await;
    assert_eq!(connected.status, StatusCode::OK, "{}", connected.body);
    accounts(api, "messenger").await
}

/// `GET /api/integrations/accounts/{id}`'s body.
async fn account(api: &Client, id: &str) -> Value {
    api.get(&format!("/api/integrations/accounts/{id}"))
        .await
        .body
}

/// `POST /api/integrations/messenger/disconnect/{id}`.
async fn disconnect(api: &Client, id: &str) -> Response {
    api.post(
        &format!("/api/integrations/messenger/disconnect/{id}"),
        json!({}),
    )
    .await
}

/// The one recorded request with `method` on `suffix`, made with the Page token of `page_id`.
async fn only_with_page_token(
    fake: &FakeMeta,
    method: &str,
    suffix: &str,
    page_id: &str,
) -> RecordedRequest {
    let request = only(fake, method, suffix).await;
    assert_eq!(
        request.bearer_token(),
        Some(fake_page_token(page_id).as_str())
    );
    request
}

#[tokio::test]
async fn messenger_connect_lists_every_page_with_the_long_lived_user_token() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let connected = connect(&api, "messenger", "AQ-facebook-1", FB_REDIRECT).await;
    assert_eq!(connected.status, StatusCode::OK, "{}", connected.body);
    assert_eq!(
        connected.body,
        json!({"pages": [{"page_id": FAKE_PAGES[0].0, "page_name": FAKE_PAGES[0].1},
                         {"page_id": FAKE_PAGES[1].0, "page_name": FAKE_PAGES[1].1}],
               "user_token": FAKE_FB_LONG_USER_TOKEN})
    );
    let requests = fake.requests().await;
    assert_eq!(requests.len(), 4, "{requests:?}");
    let code = params(requests[0].query.as_deref());
    assert_eq!(code["client_id"], "test-meta-app-id");
    assert_eq!(code["client_secret"], TEST_META_APP_SECRET);
    assert_eq!(code["redirect_uri"], FB_REDIRECT);
    assert_eq!(code["code"], "AQ-facebook-1");
    let exchange = params(requests[1].query.as_deref());
    assert_eq!(exchange["grant_type"], "fb_exchange_token");
    assert_eq!(exchange["fb_exchange_token"], FAKE_FB_SHORT_USER_TOKEN);
    for listing in &requests[2..] {
        assert!(listing.path.ends_with("/me/accounts"));
        assert_eq!(listing.bearer_token(), Some(FAKE_FB_LONG_USER_TOKEN));
    }
    assert_eq!(params(requests[3].query.as_deref())["after"], "cursor-1");
    assert!(
        accounts(&api, "messenger").await.is_empty(),
        "nothing saved"
    );

    let refused = connect(&api, "messenger", "bad-code", FB_REDIRECT).await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    let invalid = connect(&api, "messenger", "AQ-2", "").await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn messenger_pages_become_fb_accounts_subscribed_with_their_page_tokens() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let saved = connect_pages(&api).await;
    assert_eq!(saved.len(), 2);
    for (account, (page_id, name)) in saved.iter().zip(FAKE_PAGES) {
        assert_eq!(account["account_key"], format!("fb-{page_id}"));
        assert_eq!(account["display_name"], name);
        assert_eq!(account["is_active"], true);
        assert_eq!(account["config"]["page_id"], page_id);
        assert_eq!(account["config"]["page_name"], name);
        assert_eq!(
            account["config"]["page_access_token"],
            masked(&fake_page_token(page_id))
        );
        let access = only(&fake, "GET", &format!("/{page_id}")).await;
        assert_eq!(access.bearer_token(), Some(FAKE_FB_LONG_USER_TOKEN));
        let subscribe = only_with_page_token(
            &fake,
            "POST",
            &format!("/{page_id}/subscribed_apps"),
            page_id,
        )
        .await;
        assert_eq!(
            params(subscribe.query.as_deref())["subscribed_fields"],
            "messages,messaging_postbacks,message_deliveries,message_reads,message_echoes,message_reactions"
        );
    }
    assert_eq!(saved.iter().filter(|a| a["is_default"] == true).count(), 1);
    assert_eq!(saved[0]["is_default"], true);

    // The same selection again updates the two accounts.
    let again = connect_pages(&api).await;
    assert_eq!(again.len(), 2, "updated, not duplicated");
    assert_eq!(again[0]["id"], saved[0]["id"]);

    let cases = vec![
        (json!({"pages": [], "user_token": "t"}), "pages"),
        (
            json!({"pages": [{"page_id": "abc", "page_name": "x"}], "user_token": "t"}),
            "pages[0].page_id",
        ),
        (
            json!({"pages": [{"page_id": "", "page_name": "x"}], "user_token": "t"}),
            "pages[0].page_id",
        ),
        (
            json!({"pages": [{"page_id": "1"}, {"page_id": "1"}], "user_token": "t"}),
            "pages[1].page_id",
        ),
        (
            json!({"pages": [{"page_id": "1"}], "user_token": ""}),
            "user_token",
        ),
        (json!({"pages": [{"page_id": "1"}]}), "user_token"),
    ];
    assert_each_invalid(&api, "/api/integrations/messenger/pages", cases).await;

    // Another organization's admin holding a user token cannot take the Pages over, and a Meta
    // refusal (an unknown user token) saves nothing.
    let other = app.register("Other Shop").await.client(&app);
    let page = json!([{"page_id": FAKE_PAGES[0].0, "page_name": FAKE_PAGES[0].1}]);
    let taken = other
        .post(
            "/api/integrations/messenger/pages",
            json!({"pages": page, "user_token": FAKE_FB_LONG_USER_TOKEN}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.error_code(), "account_key_taken");
    let refused = other
        .post("/api/integrations/messenger/pages",
              json!({"pages": [{"page_id": "100000000000999", "page_name": "Mine"}], "user_token": "EAA-unknown"}))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert!(accounts(&other, "messenger").await.is_empty());
}

#[tokio::test]
async fn disconnect_unsubscribes_the_page_then_deactivates_the_account() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let saved = connect_pages(&api).await;
    let id = saved[0]["id"].as_str().unwrap();
    let disconnected = disconnect(&api, id).await;
    assert_eq!(disconnected.status, StatusCode::OK, "{}", disconnected.body);
    assert_eq!(disconnected.body, json!({"success": true, "id": id}));
    let (page_id, _) = FAKE_PAGES[0];
    only_with_page_token(
        &fake,
        "DELETE",
        &format!("/{page_id}/subscribed_apps"),
        page_id,
    )
    .await;
    assert_eq!(account(&api, id).await["is_active"], false);
    let other_page = account(&api, saved[1]["id"].as_str().unwrap()).await;
    assert_eq!(
        other_page["is_active"], true,
        "the other Page stays connected"
    );
    let logs = api
        .get("/api/activity-logs?action=integration_account.disconnected")
        .await;
    assert_eq!(logs.body["total"], 1);

    // Reconnecting the Page reactivates the same account.
    let again = connect_pages(&api).await;
    assert_eq!(again[0]["id"], id);
    assert_eq!(again[0]["is_active"], true);

    // Meta refusing (a revoked Page token) leaves the account as it was.
    let stale = api
        .patch(
            &format!("/api/integrations/accounts/{id}"),
            json!({"config": {"page_access_token": "EAA-revoked-token"}}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::OK, "{}", stale.body);
    let refused = disconnect(&api, id).await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert_eq!(refused.body["error"]["details"]["upstream_status"], 403);
    assert_eq!(account(&api, id).await["is_active"], true);
}

#[tokio::test]
async fn the_persistent_menu_is_read_set_and_deleted_with_the_page_token() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let saved = connect_pages(&api).await;
    let id = saved[1]["id"].as_str().unwrap();
    let token = fake_page_token(FAKE_PAGES[1].0);
    let path = format!("/api/integrations/messenger/{id}/persistent-menu");
    fake.clear_requests().await;

    let none = api.get(&path).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.body, json!({}), "Meta's {{\"data\":[]}}");
    let menu = json!([{"locale": "default", "composer_input_disabled": false, "call_to_actions": [
        {"type": "postback", "title": "Talk to an agent", "payload": "AGENT"},
        {"type": "web_url", "title": "Shop", "url": "https://shop.example", "webview_height_ratio": "full"}
    ]}]);
    let set = api.post(&path, json!({"persistent_menu": menu})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body, json!({"success": true, "deleted": false}));
    let current = api.get(&path).await;
    assert_eq!(current.body, json!({"data": [{"persistent_menu": menu}]}));
    let deleted = api.post(&path, json!({"delete": true})).await;
    assert_eq!(deleted.body, json!({"success": true, "deleted": true}));
    assert_eq!(api.get(&path).await.body, json!({}));

    let requests = fake.requests().await;
    let calls: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        calls,
        [
            ("GET", "/me/messenger_profile"),
            ("POST", "/me/messenger_profile"),
            ("GET", "/me/messenger_profile"),
            ("DELETE", "/me/messenger_profile"),
            ("GET", "/me/messenger_profile")
        ]
    );
    assert!(requests
        .iter()
        .all(|r| r.bearer_token() == Some(token.as_str())));
    assert_eq!(
        params(requests[0].query.as_deref())["fields"],
        "persistent_menu"
    );
    assert_eq!(requests[1].body, json!({"persistent_menu": menu}));
    assert_eq!(requests[3].body, json!({"fields": ["persistent_menu"]}));

    for body in [
        json!({}),
        json!({"delete": false}),
        json!({"delete": true, "persistent_menu": menu}),
        json!({"persistent_menu": []}),
        json!({"persistent_menu": [{"call_to_actions": []}]}),
        json!({"persistent_menu": "menu"}),
    ] {
        let response = api.post(&path, body.clone()).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            response.body
        );
    }
    assert_eq!(
        fake.requests().await.len(),
        5,
        "refused bodies reach no one"
    );
}

#[tokio::test]
async fn messenger_account_endpoints_are_tenant_isolated_and_messenger_only() {
    let Setup { app, fake, admin } = setup().await;
    let api = admin.client(&app);
    let saved = connect_pages(&api).await;
    let page_account = saved[0]["id"].as_str().unwrap().to_owned();
    let instagram = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": "instagram", "account_key": "ig-1", "config": {"ig_user_id": "1", "access_token": omnistream_tests::fake_meta::fake_ig_token("1")}}),
        )
        .await;
    assert_eq!(instagram.status, StatusCode::CREATED, "{}", instagram.body);
    let instagram = instagram.body["id"].as_str().unwrap().to_owned();
    fake.clear_requests().await;

    let other = app.register("Intruder").await.client(&app);
    let unknown = uuid::Uuid::new_v4().to_string();
    for (client, id, status, code) in [
        (
            &other,
            page_account.as_str(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (&api, unknown.as_str(), StatusCode::NOT_FOUND, "not_found"),
        (
            &api,
            instagram.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_messenger_account",
        ),
        (
            &api,
            "not-a-uuid",
            StatusCode::BAD_REQUEST,
            "validation_error",
        ),
    ] {
        for (method, path, body) in messenger_account_endpoints(id) {
            let response = client.send(method.parse().unwrap(), &path, body).await;
            assert_eq!(
                response.status, status,
                "{method} {path}: {}",
                response.body
            );
            assert_eq!(response.error_code(), code);
        }
    }
    assert!(
        fake.requests().await.is_empty(),
        "no Graph call for refused accounts"
    );
    assert_eq!(
        account(&api, &page_account).await["is_active"],
        true,
        "the intruder disconnected nothing"
    );
}
