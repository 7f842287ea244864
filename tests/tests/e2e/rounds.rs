//! The inbound processor's rounds: a claimed round's events and its payloads' outcomes commit
//! together, once; a round that cannot commit at once is handed back and run a command at a
//! time, so one payload whose events cannot be stored holds up nobody else.

use omnistream_commands::store::{ids, CommandContext, ContactService, UnitOfWork};
use omnistream_domain::contact::ContactCommand;
use omnistream_domain::{Channel, TenantId};
use omnistream_tests::fake_meta::whatsapp_text_webhook;
use omnistream_tests::TestApp;
use reqwest::StatusCode;

use crate::ordering::{platform_without_processor, processor};

const PHONE_NUMBER_ID: &str = "700000000000021";

/// Posts one text message per `(customer, wamid, text)`.
async fn post_messages(app: &TestApp, messages: &[(String, String, String)]) {
    let now = chrono::Utc::now().timestamp();
    for (customer, wamid, text) in messages {
        let webhook = whatsapp_text_webhook(PHONE_NUMBER_ID, customer, "C", wamid, text, now);
        assert_eq!(
            app.post_meta_webhook(&webhook).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_rounds_events_and_outcomes_commit_in_one_transaction_in_arrival_order() {
    let app = platform_without_processor("Rounds", PHONE_NUMBER_ID).await;
    let mut messages: Vec<(String, String, String)> = (0..30)
        .map(|n| {
            (
                format!("62817100{n:02}"),
                format!("wamid.R{n}"),
                format!("hi {n}"),
            )
        })
        .collect();
    messages.push((
        "6281710000".into(),
        "wamid.R-again".into(),
        "me again".into(),
    ));
    post_messages(&app, &messages).await;

    assert_eq!(processor(&app).process_due().await.unwrap(), 31);

    let statuses: Vec<String> = sqlx::query_scalar("SELECT DISTINCT status FROM inbound_webhooks")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(statuses, ["processed"]);
    let transactions: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT xid(transaction_id)::text::bigint FROM events
         WHERE metadata->>'causation_id' LIKE 'inbound_webhook:%'
         UNION
         SELECT DISTINCT xmin::text::bigint FROM inbound_webhooks",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        transactions.len(),
        1,
        "every event of the round and every outcome in one transaction"
    );
    let received: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'InboundMessageReceived'->>'provider_message_id' FROM events
         WHERE event_type = 'InboundMessageReceived' ORDER BY global_position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let sent: Vec<String> = messages.iter().map(|(_, wamid, _)| wamid.clone()).collect();
    assert_eq!(received.len(), 31, "{received:?}");
    let again = received.iter().position(|w| w == "wamid.R-again").unwrap();
    let first = received.iter().position(|w| w == "wamid.R0").unwrap();
    assert!(first < again, "a customer's messages in arrival order");
    let mut sorted_received = received.clone();
    sorted_received.sort();
    let mut sorted_sent = sent;
    sorted_sent.sort();
    assert_eq!(sorted_received, sorted_sent, "each message once");

    let api_inbox: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE event_type = 'InboundMessageReceived'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(api_inbox, 30, "one conversation per customer");
}

#[tokio::test]
async fn a_payload_whose_events_cannot_be_stored_holds_up_nobody_else() {
    let app = platform_without_processor("Rounds", PHONE_NUMBER_ID).await;
    // PostgreSQL's JSON refuses the NUL character: this message's event can never be stored.
    let messages: Vec<(String, String, String)> = (0..5)
        .map(|n| {
            let text = if n == 2 {
                "bad \u{0} text".to_owned()
            } else {
                format!("fine {n}")
            };
            (format!("62817200{n:02}"), format!("wamid.B{n}"), text)
        })
        .collect();
    post_messages(&app, &messages).await;

    let processor = processor(&app);
    processor.process_due().await.unwrap();

    let outcomes: Vec<(String, i32, Option<String>)> =
        sqlx::query_as("SELECT status, attempts, error FROM inbound_webhooks ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for (n, (status, attempts, error)) in outcomes.iter().enumerate() {
        if n == 2 {
            assert_eq!(status, "pending", "waits for a retry");
            assert_eq!(*attempts, 1, "the handed-back round did not count");
            assert!(error.is_some(), "the store's refusal is kept");
        } else {
            assert_eq!(status, "processed", "payload {n}: {error:?}");
        }
    }
    let received: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'InboundMessageReceived'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(received, 4, "the other four customers' messages, once each");
}

#[tokio::test]
async fn a_long_conversation_is_loaded_from_its_snapshot_and_continues_in_sequence() {
    let app = platform_without_processor("Rounds", PHONE_NUMBER_ID).await;
    let message = |n: usize| {
        (
            "6281730000".to_owned(),
            format!("wamid.L{n}"),
            format!("line {n}"),
        )
    };
    // One round of 120 messages: the unit writes the conversation's first snapshot.
    post_messages(&app, &(0..120).map(message).collect::<Vec<_>>()).await;
    let processor = processor(&app);
    assert_eq!(processor.process_due().await.unwrap(), 120);
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM snapshots WHERE aggregate_type = 'Conversation'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(snapshots, 1, "a snapshot after 100 events");
    // The next round loads the conversation from that snapshot and the events after it.
    post_messages(&app, &(120..150).map(message).collect::<Vec<_>>()).await;
    assert_eq!(processor.process_due().await.unwrap(), 30);

    let sequences: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM events WHERE aggregate_type = 'Conversation' ORDER BY sequence",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        sequences,
        (1..=151).collect::<Vec<i64>>(),
        "opened, then 150 messages"
    );
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT payload->'InboundMessageReceived'->>'provider_message_id' FROM events
         WHERE event_type = 'InboundMessageReceived' ORDER BY sequence",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        texts,
        (0..150).map(|n| format!("wamid.L{n}")).collect::<Vec<_>>(),
        "each message once, in the order sent"
    );
}

#[tokio::test]
async fn loads_a_units_commands_make_together_share_one_statement() {
    let app = platform_without_processor("Rounds", PHONE_NUMBER_ID).await;
    let tenant = TenantId::new();
    let context = CommandContext::system(tenant);
    let unit = UnitOfWork::new(app.pool.clone());
    let contacts = ContactService::in_unit(&unit);
    let record = |n: u32| {
        let external_id = format!("62817400{n:02}");
        let command = ContactCommand::RecordIdentity {
            tenant_id: tenant.as_uuid(),
            channel: Channel::Whatsapp,
            external_id: external_id.clone(),
            profile_name: Some(format!("Customer {n}")),
            phone_number: None,
            at: chrono::Utc::now(),
        };
        let id = ids::contact(tenant, Channel::Whatsapp, &external_id);
        let (contacts, context) = (&contacts, &context);
        async move { contacts.execute(context, id, command).await }
    };
    let outcomes = futures::future::join_all((0..10).map(record)).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    // join_all polls all ten before the first load's leader reads: one statement (two at
    // most, should the leader's pause end before the last has asked).
    assert!(
        unit.read_statements() <= 2,
        "10 loads made together took {} statements",
        unit.read_statements()
    );

    let mut transaction = app.pool.begin().await.unwrap();
    assert_eq!(unit.append_in(&mut transaction).await.unwrap(), 10);
    transaction.commit().await.unwrap();
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT aggregate_id) FROM events WHERE aggregate_type = 'Contact'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded, 10);
}
