//! Account keys route inbound webhooks, so nobody claims another business's: Messenger and
//! Instagram keys are confirmed with Meta before they are saved, derived keys never change, and
//! mail for `local+tag@domain` belongs to the owner of `local@domain`.

use omnistream_tests::fake_meta::{fake_ig_token, fake_page_token};
use reqwest::StatusCode;
use serde_json::json;

use crate::messaging::social_app;

#[tokio::test]
async fn messenger_and_instagram_keys_are_confirmed_with_meta_before_they_are_saved() {
    let (fake, app, api) = social_app("Page Owner", vec![]).await;
    let page = |page_id: &str, token: String| {
        json!({"channel": "messenger", "is_active": true,
               "config": {"page_id": page_id, "page_access_token": token}})
    };
    // Another Page's token does not read this Page: Meta's reason, nothing saved.
    let foreign = api
        .post(
            "/api/integrations/accounts",
            page("PAGE41", fake_page_token("PAGE42")),
        )
        .await;
    assert_eq!(
        foreign.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        foreign.body
    );
    assert_eq!(foreign.error_code(), "account_not_confirmed");
    assert!(foreign.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Invalid OAuth access token"));
    let typed = api
        .post(
            "/api/integrations/accounts",
            json!({"channel": "messenger", "account_key": "fb-PAGE99",
                   "config": {"page_id": "PAGE41", "page_access_token": fake_page_token("PAGE41")}}),
        )
        .await;
    assert_eq!(
        typed.status,
        StatusCode::BAD_REQUEST,
        "a key other than fb-<page_id>"
    );
    let accounts = api.get("/api/integrations/accounts").await.body;
    assert_eq!(accounts.as_array().map_or(0, Vec::len), 0, "{accounts}");

    let own = api
        .post(
            "/api/integrations/accounts",
            page("PAGE41", fake_page_token("PAGE41")),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_eq!(own.body["account_key"], "fb-PAGE41");
    assert!(fake
        .requests()
        .await
        .iter()
        .any(|r| r.path.ends_with("/PAGE41")
            && r.query.as_deref().is_some_and(|q| q.contains("fields=id"))));

    // A derived key, or the id it comes from, never changes.
    let id = own.body["id"].as_str().unwrap();
    let renamed = api
        .patch(
            &format!("/api/integrations/accounts/{id}"),
            json!({"account_key": "fb-PAGE42"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::BAD_REQUEST);
    let moved = api
        .patch(
            &format!("/api/integrations/accounts/{id}"),
            json!({"config": {"page_id": "PAGE42"}}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST);

    let instagram = |user_id: &str, token: String| {
        json!({"channel": "instagram", "is_active": true,
               "config": {"ig_user_id": user_id, "access_token": token}})
    };
    let someone_elses = api
        .post(
            "/api/integrations/accounts",
            instagram("IG41", fake_ig_token("IG42")),
        )
        .await;
    assert_eq!(someone_elses.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(someone_elses.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("IG42"));
    let revoked = api
        .post(
            "/api/integrations/accounts",
            instagram("IG41", "IGAA-revoked".into()),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mine = api
        .post(
            "/api/integrations/accounts",
            instagram("IG41", fake_ig_token("IG41")),
        )
        .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{}", mine.body);
    assert_eq!(mine.body["account_key"], "ig-IG41");

    // The same Page in another organization is taken, token or not.
    let intruder = app.register("Intruder").await.client(&app);
    let stolen = intruder
        .post(
            "/api/integrations/accounts",
            page("PAGE41", fake_page_token("PAGE41")),
        )
        .await;
    assert_eq!(stolen.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn tagged_email_keys_belong_to_the_owner_of_the_base_address() {
    let (_fake, app, owner) = social_app("Acme", vec![]).await;
    let email = |key: &str| {
        json!({"channel": "email", "account_key": key, "is_active": true,
               "config": {"inbound_address": key}})
    };
    let base = owner
        .post("/api/integrations/accounts", email("support@acme.test"))
        .await;
    assert_eq!(base.status, StatusCode::CREATED, "{}", base.body);
    let own_tag = owner
        .post(
            "/api/integrations/accounts",
            email("support+sales@acme.test"),
        )
        .await;
    assert_eq!(own_tag.status, StatusCode::CREATED, "{}", own_tag.body);

    let other = app.register("Other").await.client(&app);
    for key in [
        "support+billing@acme.test",
        "Support+Billing@ACME.test",
        "SUPPORT@acme.test",
    ] {
        let refused = other.post("/api/integrations/accounts", email(key)).await;
        assert_eq!(
            refused.status,
            StatusCode::CONFLICT,
            "{key}: {}",
            refused.body
        );
        assert_eq!(refused.error_code(), "account_key_taken");
    }
    // The other way round: a base address whose tagged form is another tenant's.
    let tagged = other
        .post("/api/integrations/accounts", email("help+desk@acme.test"))
        .await;
    assert_eq!(tagged.status, StatusCode::CREATED, "{}", tagged.body);
    let base_of_theirs = owner
        .post("/api/integrations/accounts", email("help@acme.test"))
        .await;
    assert_eq!(base_of_theirs.status, StatusCode::CONFLICT);
    // And no renaming onto it.
    let tagged_id = tagged.body["id"].as_str().unwrap();
    let renamed = other
        .patch(
            &format!("/api/integrations/accounts/{tagged_id}"),
            json!({"account_key": "support+desk@acme.test"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::CONFLICT);
}
