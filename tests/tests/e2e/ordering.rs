//! Order across processors: a customer's inbound payloads are handled in the order they
//! arrived, and a conversation's outbound messages reach the provider in the order they were
//! queued, however many processors or senders run and whatever must be retried.

use omnistream_commands::channels::email::reply_address::ReplyTokens;
use omnistream_commands::infra::media::MediaStore;
use omnistream_commands::infra::wakeup::Wakeups;
use omnistream_commands::store::{ContactService, ConversationService};
use omnistream_gateway::app::Roles;
use omnistream_ingest::InboundProcessor;
use omnistream_tests::fake_meta::{whatsapp_text_webhook, FakeMeta};
use omnistream_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::whatsapp::{spine, Spine};

const PHONE_NUMBER_ID: &str = "700000000000001";

/// A processor of `app`'s raw inbound log, as another worker process would run one.
pub(crate) fn processor(app: &TestApp) -> InboundProcessor {
    InboundProcessor {
        pool: app.pool.clone(),
        conversations: ConversationService::new(app.pool.clone()),
        contacts: ContactService::new(app.pool.clone()),
        media: MediaStore::new(app.pool.clone(), &app.data_dir),
        reply_tokens: ReplyTokens::new([7; 32]),
        wakeups: Wakeups::polling(),
    }
}

/// The API and the receivers of a new platform whose organisation `name` has WhatsApp number
/// `phone_number_id` connected; no processor runs (a test runs its own).
pub(crate) async fn platform_without_processor(name: &str, phone_number_id: &str) -> TestApp {
    let database_url = omnistream_tests::create_test_database().await;
    let roles = Roles {
        api: true,
        ingest: true,
        worker: false,
    };
    let fake = FakeMeta::start().await;
    let graph = fake.base_url.clone();
    let app = TestApp::spawn_on(database_url, roles, move |config| {
        config.meta_graph_base_url = graph;
    })
    .await;
    let admin = app.register(name).await;
    let account = admin
        .client(&app)
        .post(
            "/api/integrations/accounts",
            json!({"channel": "whatsapp", "is_active": true, "display_name": "Line",
                   "config": {"phone_number_id": phone_number_id, "waba_id": "100000000000009",
                              "access_token": "EAAG-secret-access-token-9999"}}),
        )
        .await;
    assert_eq!(account.status, StatusCode::CREATED, "{}", account.body);
    app
}

/// `(status, attempts)` of each stored payload, oldest first.
async fn payloads(app: &TestApp) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT status, attempts FROM inbound_webhooks ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_customers_payloads_wait_behind_one_that_waits_for_a_retry_on_every_processor() {
    let app = platform_without_processor("Ordered", PHONE_NUMBER_ID).await;
    let now = chrono::Utc::now().timestamp();
    for (customer, wamid, text) in [
        ("6281700001", "wamid.O1", "first"),
        ("6281700001", "wamid.O2", "second"),
        ("6281700002", "wamid.O3", "other customer"),
    ] {
        let webhook = whatsapp_text_webhook(PHONE_NUMBER_ID, customer, "C", wamid, text, now);
        assert_eq!(
            app.post_meta_webhook(&webhook).await.status(),
            StatusCode::OK
        );
    }
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM inbound_webhooks ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    // The first customer's first payload failed once and waits for its retry.
    sqlx::query(
        "UPDATE inbound_webhooks SET attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE id = $1",
    )
    .bind(ids[0])
    .execute(&app.pool)
    .await
    .unwrap();

    let (one, two) = (processor(&app), processor(&app));
    let (a, b) = tokio::join!(one.process_due(), two.process_due());
    assert_eq!(
        a.unwrap() + b.unwrap(),
        1,
        "only the other customer's payload"
    );
    assert_eq!(
        payloads(&app).await,
        [
            ("pending".to_owned(), 1),
            ("pending".to_owned(), 0),
            ("processed".to_owned(), 1)
        ],
        "the second payload waits behind the first, untouched"
    );

    // The retry comes due: both go, first then second, whichever processor takes them.
    sqlx::query("UPDATE inbound_webhooks SET next_attempt_at = now() WHERE id = $1")
        .bind(ids[0])
        .execute(&app.pool)
        .await
        .unwrap();
    while payloads(&app)
        .await
        .iter()
        .any(|(status, _)| status == "pending")
    {
        let (a, b) = tokio::join!(one.process_due(), two.process_due());
        a.unwrap();
        b.unwrap();
    }
    let causes: Vec<String> = sqlx::query_scalar(
        "SELECT metadata->>'causation_id' FROM events
         WHERE event_type = 'InboundMessageReceived' AND aggregate_id = (
             SELECT aggregate_id FROM events
             WHERE event_type = 'InboundMessageReceived' AND payload::text LIKE '%wamid.O1%')
         ORDER BY sequence",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        causes,
        [
            format!("inbound_webhook:{}", ids[0]),
            format!("inbound_webhook:{}", ids[1])
        ],
        "the customer's messages were recorded in the order they arrived"
    );
}

#[tokio::test]
async fn a_burst_of_replies_reaches_the_provider_in_the_order_it_was_queued() {
    let Spine {
        app, fake, admin, ..
    } = spine("700000000000002").await;
    let api = admin.client(&app);
    let webhook = whatsapp_text_webhook(
        "700000000000002",
        "6281700003",
        "Customer",
        "wamid.O4",
        "hello",
        chrono::Utc::now().timestamp(),
    );
    assert_eq!(
        app.post_meta_webhook(&webhook).await.status(),
        StatusCode::OK
    );
    let inbox = app
        .eventually(&api, "/api/conversations", |b| b["total"] == 1)
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap().to_owned();

    // Thirty quick replies at once: the log decides their order.
    let path = format!("/api/conversations/{id}/messages");
    let sends = (0..30).map(|n| {
        let api = api.clone();
        let path = path.clone();
        async move {
            let sent = api
                .post(&path, json!({"content": format!("reply {n:02}")}))
                .await;
            assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
        }
    });
    futures::future::join_all(sends).await;

    let history = api
        .get(&format!("/api/conversations/{id}/events?per_page=100"))
        .await
        .body;
    let queued: Vec<String> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "OutboundMessageQueued")
        .map(|e| queued_content(&e["payload"]))
        .collect();
    assert_eq!(queued.len(), 30);
    let delivered: Vec<String> = fake
        .wait_for_messages(30, std::time::Duration::from_secs(20))
        .await
        .iter()
        .map(|r| r.body["text"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        delivered, queued,
        "one after the other, in the conversation's order"
    );
}

/// The text of an `OutboundMessageQueued` event's payload.
fn queued_content(payload: &Value) -> String {
    payload["OutboundMessageQueued"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("a queued text: {payload}"))
        .to_owned()
}
