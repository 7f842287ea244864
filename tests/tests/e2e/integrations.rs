//! Integrations (WhatsApp part): accounts, defaults, secrets, Graph calls.

use omnistream_tests::fake_meta::{whatsapp_status_webhook, whatsapp_text_webhook, FakeMeta};
use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::whatsapp::{spine, Spine};

fn whatsapp_account(phone_number_id: &str) -> Value {
    json!({"channel": "whatsapp", "is_active": true,
           "config": {"phone_number_id": phone_number_id, "waba_id": "100000000000001", "access_token": "EAAG-token-abcd"}})
}

#[tokio::test]
async fn accounts_keep_one_default_and_never_lose_a_secret_to_its_mask() {
    let Spine {
        app,
        admin,
        account,
        ..
    } = spine("400000000000001").await;
    let api = admin.client(&app);
    let first = account["id"].as_str().unwrap().to_owned();
    let second = api
        .post(
            "/api/integrations/accounts",
            whatsapp_account("400000000000002"),
        )
        .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["is_default"], false);
    assert_eq!(
        second.body["webhook_url"],
        format!("{}/webhooks/meta", "http://127.0.0.1:0")
    );
    assert_eq!(second.body["verify_token"].as_str().unwrap().len(), 32);
    let second_id = second.body["id"].as_str().unwrap().to_owned();

    let stored: Value =
        sqlx::query_scalar("SELECT config FROM integration_accounts WHERE id = $1::uuid")
            .bind(&second_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        !stored.to_string().contains("EAAG-token-abcd"),
        "encrypted at rest: {stored}"
    );

    let merged = api
        .patch(
            &format!("/api/integrations/accounts/{second_id}"),
            json!({"config": {"access_token": "****abcd", "display_phone_number": "+62 811"}}),
        )
        .await;
    assert_eq!(merged.status, StatusCode::OK, "{}", merged.body);
    assert_eq!(
        merged.body["config"]["access_token"], "****",
        "a token under 16 characters is masked entirely"
    );
    assert_eq!(merged.body["config"]["display_phone_number"], "+62 811");

    let refused = api
        .patch(
            &format!("/api/integrations/accounts/{first}"),
            json!({"is_default": false}),
        )
        .await;
    assert_eq!(refused.error_code(), "default_account_required");
    let switched = api
        .post(
            &format!("/api/integrations/accounts/{second_id}/set-default"),
            json!({}),
        )
        .await;
    assert_eq!(switched.body["is_default"], true);
    let accounts = api
        .get("/api/integrations/accounts?channel=whatsapp")
        .await
        .body;
    let defaults: Vec<&Value> = accounts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(
        accounts[0]["id"],
        second_id.as_str(),
        "the default is listed first"
    );

    assert_eq!(
        api.delete(&format!("/api/integrations/accounts/{second_id}"))
            .await
            .status,
        StatusCode::OK
    );
    let remaining = api
        .get(&format!("/api/integrations/accounts/{first}"))
        .await
        .body;
    assert_eq!(
        remaining["is_default"], true,
        "deleting the default promotes another"
    );

    let taken = api
        .post(
            "/api/integrations/accounts",
            whatsapp_account("400000000000001"),
        )
        .await;
    assert_eq!(taken.error_code(), "account_key_taken");
    let missing = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": "whatsapp", "config": {"waba_id": "1"}}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body["error"]["details"]["config.access_token"].is_string());
    let supervisor = app.create_agent(&admin, "supervisor", json!({})).await;
    assert_eq!(
        supervisor
            .client(&app)
            .get("/api/integrations/accounts")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        supervisor
            .client(&app)
            .post("/api/integrations/accounts", whatsapp_account("4000"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn channel_integrations_upsert_merge_and_mask() {
    let app = TestApp::spawn().await;
    let admin = app.register("Org").await;
    let api = admin.client(&app);
    let empty = api.get("/api/integrations/whatsapp").await.body;
    assert_eq!(empty["id"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(empty["is_active"], false);
    assert_eq!(empty["config"], json!({}));
    let created = api
        .send(
            reqwest::Method::PUT,
            "/api/integrations/whatsapp",
            Some(json!({"is_active": true, "config": {"app_secret": "s3cr3t-value", "note": "x"}})),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(
        created.body["config"]["app_secret"], "****",
        "a secret under 16 characters shows none of its characters"
    );
    let merged = api
        .send(
            reqwest::Method::PUT,
            "/api/integrations/whatsapp",
            Some(json!({"config": {"app_secret": "****", "note": null}})),
        )
        .await;
    assert_eq!(merged.body["config"], json!({"app_secret": "****"}));
    assert_eq!(merged.body["is_active"], true);
    assert_eq!(
        api.get("/api/integrations")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/api/integrations/sms").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.delete("/api/integrations/whatsapp").await.body["channel"],
        "whatsapp"
    );
    assert_eq!(
        api.delete("/api/integrations/whatsapp").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn meta_refusing_the_onboarding_saves_nothing_and_answers_502() {
    let fake = FakeMeta::start().await;
    let base = fake.base_url.clone();
    let app = TestApp::spawn_with(move |config| config.meta_graph_base_url = base).await;
    let admin = app.register("Org").await;
    let mut request = whatsapp_account("400000000000003");
    request["config"]["access_token"] = json!("");
    let no_token = admin
        .client(&app)
        .post("/api/integrations/accounts", request)
        .await;
    assert_eq!(no_token.status, StatusCode::BAD_REQUEST);

    // Under an unknown path prefix every Graph call gets Meta's error shape (code 100) back.
    let failing = FakeMeta::start().await;
    let base = failing.base_url.clone();
    let app = TestApp::spawn_with(move |config| {
        config.meta_graph_base_url = format!("{base}/not-a-graph-version")
    })
    .await;
    let admin = app.register("Org").await;
    let refused = admin
        .client(&app)
        .post(
            "/api/integrations/accounts",
            whatsapp_account("400000000000004"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY, "{}", refused.body);
    assert_eq!(refused.error_code(), "upstream_error");
    assert_eq!(refused.body["error"]["details"]["provider"], "meta");
    assert_eq!(
        admin
            .client(&app)
            .get("/api/integrations/accounts")
            .await
            .body,
        json!([])
    );
}

#[tokio::test]
async fn whatsapp_status_and_embedded_signup_use_the_graph_api() {
    let Spine {
        app,
        fake,
        admin,
        account,
    } = spine("400000000000005").await;
    let api = admin.client(&app);
    let status = api
        .get(&format!(
            "/api/integrations/accounts/{}/whatsapp-status",
            account["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    assert_eq!(status.body["healthy"], true, "{}", status.body);
    assert_eq!(status.body["subscribed_ok"], true);
    assert_eq!(status.body["phone_number_id"], "400000000000005");
    assert_eq!(
        api.get("/api/integrations/whatsapp/embedded-signup-config")
            .await
            .body,
        json!({"app_id": "test-meta-app-id", "config_id": "test-meta-config-id"})
    );

    let connected = api
        .post("/api/integrations/whatsapp/embedded-signup", json!({"code": "AQB-code", "waba_id": "100000000000009", "phone_number_id": "400000000000006"}))
        .await;
    assert_eq!(connected.status, StatusCode::OK, "{}", connected.body);
    assert_eq!(connected.body["success"], true);
    assert_eq!(connected.body["account_key"], "wa-400000000000006");
    let exchange = fake
        .requests()
        .await
        .into_iter()
        .find(|r| r.path.ends_with("/oauth/access_token"))
        .expect("code exchanged");
    assert!(exchange.query.unwrap_or_default().contains("code=AQB-code"));
    let accounts = api.get("/api/integrations/accounts").await.body;
    let signed_up = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_key"] == "wa-400000000000006")
        .unwrap();
    assert_eq!(signed_up["is_active"], true);
    assert_eq!(
        signed_up["config"]["access_token"], "****",
        "the exchanged token, masked"
    );
}

#[tokio::test]
async fn a_failed_status_webhook_carries_metas_code_and_title() {
    let Spine {
        app, fake, admin, ..
    } = spine("400000000000007").await;
    let now = chrono::Utc::now().timestamp();
    app.post_meta_webhook(&whatsapp_text_webhook(
        "400000000000007",
        "62800091",
        "Gita",
        "wamid.X1",
        "hi",
        now,
    ))
    .await;
    let api = admin.client(&app);
    let inbox = app
        .eventually(&api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap();
    let sent = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            json!({"content": "hello"}),
        )
        .await;
    let path = format!("/api/messages/{}", sent.body["id"].as_str().unwrap());
    let message = app.eventually(&api, &path, |m| m["status"] == "sent").await;
    let wamid = message["external_id"].as_str().unwrap();
    app.post_meta_webhook(&whatsapp_status_webhook(
        "400000000000007",
        "62800091",
        wamid,
        "failed",
        now,
    ))
    .await;
    let failed = app
        .eventually(&api, &path, |m| m["status"] == "failed")
        .await;
    assert_eq!(failed["error_message"], "(#131026) Message undeliverable");
    assert_eq!(
        fake.sent_messages().await.len(),
        1,
        "a failed receipt is not a reason to resend"
    );
}

#[tokio::test]
async fn sealed_values_are_bound_to_their_tenant_and_never_accepted_as_input() {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await.client(&app);
    let created = owner
        .post(
            "/api/integrations/accounts",
            json!({"channel": "email", "account_key": "help@owner.example",
                   "config": {"smtp_password": "owner-smtp-password-1"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let sealed: String = sqlx::query_scalar(
        "SELECT config->>'smtp_password' FROM integration_accounts WHERE id = $1::uuid",
    )
    .bind(created.body["id"].as_str().unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(sealed.starts_with("enc:v2:"), "{sealed}");

    // Another tenant pastes the ciphertext: refused everywhere a config or header is taken.
    let thief = app.register("Thief").await.client(&app);
    let refused = thief
        .post(
            "/api/integrations/accounts",
            json!({"channel": "email", "account_key": "help@thief.example",
                   "config": {"smtp_password": sealed}}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.error_code(), "validation_error");
    assert!(refused.body["error"]["details"]["config.smtp_password"].is_string());
    let own = thief
        .post(
            "/api/integrations/accounts",
            json!({"channel": "email", "account_key": "help@thief.example"}),
        )
        .await;
    let patched = thief
        .patch(
            &format!(
                "/api/integrations/accounts/{}",
                own.body["id"].as_str().unwrap()
            ),
            json!({"config": {"smtp_password": sealed}}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::BAD_REQUEST, "{}", patched.body);
    let upserted = thief
        .send(
            reqwest::Method::PUT,
            "/api/integrations/whatsapp",
            Some(json!({"config": {"app_secret": "enc:v1:AAAA"}})),
        )
        .await;
    assert_eq!(
        upserted.status,
        StatusCode::BAD_REQUEST,
        "{}",
        upserted.body
    );
    let hooked = thief
        .post(
            "/api/outgoing-webhooks",
            json!({"name": "x", "url": "https://example.com/hook", "events": ["*"],
                   "headers": {"Authorization": sealed}}),
        )
        .await;
    assert_eq!(hooked.status, StatusCode::BAD_REQUEST, "{}", hooked.body);
    assert!(hooked.body["error"]["details"]["headers.Authorization"].is_string());

    // Even written straight into the thief's row, the ciphertext does not open for them.
    sqlx::query(
        "UPDATE integration_accounts SET config = jsonb_build_object('smtp_password', $2::text) WHERE id = $1::uuid",
    )
    .bind(own.body["id"].as_str().unwrap())
    .bind(&sealed)
    .execute(&app.pool)
    .await
    .unwrap();
    let shown = thief
        .get(&format!(
            "/api/integrations/accounts/{}",
            own.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        shown.body["config"]["smtp_password"], "****",
        "{}",
        shown.body
    );
    let mine = owner
        .get(&format!(
            "/api/integrations/accounts/{}",
            created.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(mine.body["config"]["smtp_password"], "****rd-1");
    app.stop();
}
