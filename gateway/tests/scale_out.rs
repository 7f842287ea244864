//! Scale-out, proven with the real binary: two `gateway`, one `ingest` and three `worker`
//! processes on one PostgreSQL database and one NATS server. Each customer's messages reach the
//! inbox, the realtime stream and outgoing webhooks once and in order while a worker is killed
//! with SIGKILL mid-burst; a conversation's replies reach the provider in the order they were
//! queued; a token issued by one gateway works on the other.

use std::time::Duration;

use omnistream_tests::deployment::{self, Deployment};
use omnistream_tests::fake_meta::FakeMeta;
use omnistream_tests::patience::Patience;
use omnistream_tests::sse::SseClient;
use omnistream_tests::webhook_receiver::Receiver;
use omnistream_tests::Client;
use serde_json::{json, Value};

const PHONE_NUMBER_ID: &str = "900000000000001";
const CUSTOMERS: usize = 10;
const MESSAGES: usize = 10;

/// Every customer's messages, each once, in the order they were sent.
fn assert_complete_and_ordered(
    what: &str,
    by_customer: &std::collections::HashMap<String, Vec<String>>,
) {
    deployment::assert_complete_and_ordered(what, by_customer, CUSTOMERS, MESSAGES);
}

#[tokio::test]
async fn two_gateways_one_ingest_and_three_workers_keep_every_customer_in_order_through_a_kill() {
    let fake = FakeMeta::start().await;
    let deployment = Deployment::new(env!("CARGO_BIN_EXE_omnistream"), &fake.base_url).await;
    // The first process migrates the database; the others then start on it.
    let gateway_a = deployment.start("gateway").await;
    let gateway_b = deployment.start("gateway").await;
    let ingest = deployment.start("ingest").await;
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(deployment.start("worker").await);
    }

    // Registered on one gateway, the token works on the other.
    let token = gateway_a.register("Scale", "admin@scale.example").await;
    let api_a = Client::remote(&gateway_a.url, &token);
    let api_b = Client::remote(&gateway_b.url, &token);
    deployment::connect_whatsapp(&api_b, PHONE_NUMBER_ID).await;
    let receiver = Receiver::start().await;
    receiver.subscribe(&api_a, &["message.received"]).await;
    let mut stream = SseClient::connect(&gateway_b.url, &token, None).await;

    // Ten customers write ten messages each, one after the other per customer, all customers
    // at once; a worker dies with SIGKILL a third of the way in.
    let http = reqwest::Client::new();
    let burst = (0..CUSTOMERS).map(|customer| {
        let (http, ingest) = (http.clone(), ingest.url.clone());
        async move {
            for n in 0..MESSAGES {
                deployment::post_customer_message(&http, &ingest, PHONE_NUMBER_ID, customer, n)
                    .await;
            }
        }
    });
    let burst = tokio::spawn(futures::future::join_all(burst));
    let pool = sqlx::PgPool::connect(&deployment.database_url)
        .await
        .unwrap();
    let mut patience = Patience::new(Duration::from_secs(30));
    loop {
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM inbound_webhooks")
            .fetch_one(&pool)
            .await
            .unwrap();
        if stored as usize >= CUSTOMERS * MESSAGES / 3 {
            break;
        }
        assert!(patience.progressing(stored), "the burst stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers[0].child.start_kill().unwrap();
    workers[0].child.wait().await.unwrap();
    burst.await.unwrap();

    // The inbox: every conversation's history holds its customer's messages once, in order.
    let mut patience = Patience::new(Duration::from_secs(60));
    let recorded = loop {
        let texts = recorded_messages(&api_a).await;
        if texts.len() >= CUSTOMERS * MESSAGES {
            break texts;
        }
        assert!(
            patience.progressing(texts.len()),
            "the inbox stalled at {} messages",
            texts.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_complete_and_ordered(
        "inbox",
        &deployment::per_customer(recorded.iter().map(String::as_str)),
    );

    // The realtime stream of the other gateway.
    let mut streamed = Vec::new();
    while streamed.len() < CUSTOMERS * MESSAGES {
        let event = stream
            .next(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("the stream stalled after {} messages", streamed.len()));
        if event.event.as_deref() == Some("message.received") {
            streamed.push(event.data["data"]["content"].as_str().unwrap().to_owned());
        }
    }
    assert_complete_and_ordered(
        "stream",
        &deployment::per_customer(streamed.iter().map(String::as_str)),
    );

    // Outgoing webhooks: each event delivered (once per webhook-id), each customer's in order.
    // Deliveries the killed worker held come back when their 20 s lease runs out; if it led
    // the dispatcher, another worker resumes from the committed stream position at once.
    // A delivery the killed worker made but could not record is made again with the same
    // `webhook-id` (at least once; receivers deduplicate on it, as Standard Webhooks asks).
    let distinct = |r: &[omnistream_tests::webhook_receiver::Received]| {
        r.iter()
            .filter(|e| e.ok)
            .map(|e| e.id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len()
    };
    let received = receiver
        .wait_until_within("every message.received", Duration::from_secs(90), |r| {
            distinct(r) >= CUSTOMERS * MESSAGES
        })
        .await;
    let mut seen = std::collections::HashSet::new();
    let delivered: Vec<&str> = received
        .iter()
        .filter(|r| r.ok && seen.insert(r.id.as_str()))
        .map(|r| r.body["data"]["content"].as_str().unwrap())
        .collect();
    assert!(received.iter().all(|r| r.verified), "signed");
    assert_complete_and_ordered("webhooks", &deployment::per_customer(delivered));

    // Replies: a burst on one conversation reaches Meta in the order the log queued it, with
    // two workers' senders competing for it.
    let conversations = api_b.get("/api/conversations?per_page=1").await.body;
    let id = conversations["data"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{id}/messages");
    let replies = (0..20).map(|n| {
        let (api, path) = (if n % 2 == 0 { &api_a } else { &api_b }, path.clone());
        async move {
            let sent = api
                .post(&path, json!({"content": format!("reply {n:02}")}))
                .await;
            assert_eq!(sent.status, 201, "{}", sent.body);
        }
    });
    futures::future::join_all(replies).await;
    let queued: Vec<String> = api_a
        .get(&format!("/api/conversations/{id}/events?per_page=100"))
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "OutboundMessageQueued")
        .map(|e| {
            e["payload"]["OutboundMessageQueued"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let sent: Vec<String> = fake
        .wait_for_messages(20, Duration::from_secs(30))
        .await
        .iter()
        .map(|r| r.body["text"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        sent, queued,
        "replies reach Meta in the conversation's order, once each"
    );

    for process in [gateway_a, gateway_b, ingest].into_iter().chain(workers) {
        drop(process);
    }
}

/// The customer messages of every conversation, each conversation's in the order its history
/// recorded them.
async fn recorded_messages(api: &Client) -> Vec<String> {
    let list = api.get("/api/conversations?per_page=100").await.body;
    let mut texts = Vec::new();
    for conversation in list["data"].as_array().into_iter().flatten() {
        let id = conversation["id"].as_str().unwrap();
        let history = api
            .get(&format!("/api/conversations/{id}/events?per_page=100"))
            .await
            .body;
        texts.extend(
            history["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["event_type"] == "InboundMessageReceived")
                .filter_map(|e| inbound_text(&e["payload"]["InboundMessageReceived"])),
        );
    }
    texts
}

/// The text of a received message.
fn inbound_text(received: &Value) -> Option<String> {
    received["content"]["content"].as_str().map(str::to_owned)
}
