//! Group commit at the receivers: payloads handed to the intake together are stored by one
//! statement in one transaction, in the order they were handed over, and each caller is
//! answered only once its row is committed.

use omnistream_gateway::app::db::MIGRATOR;
use omnistream_ingest::intake::{InboundPayload, Intake};

#[tokio::test]
async fn payloads_handed_over_together_share_one_commit_in_arrival_order() {
    let pool = sqlx::PgPool::connect(&omnistream_tests::create_test_database().await)
        .await
        .unwrap();
    MIGRATOR.run(&pool).await.unwrap();
    let intake = Intake::start(pool.clone());

    // On this single-threaded runtime every payload is queued before the intake first runs.
    let stores = (0..100).map(|n| {
        intake.store(InboundPayload {
            provider: "meta".into(),
            body: format!("{{\"n\":{n}}}").into_bytes(),
            content_type: Some("application/json".into()),
            ordering_key: format!("customer-{}", n % 7),
        })
    });
    for stored in futures::future::join_all(stores).await {
        stored.expect("stored");
    }

    let rows: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT body, xmin::text FROM inbound_webhooks ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let bodies: Vec<String> = rows
        .iter()
        .map(|(body, _)| String::from_utf8(body.clone()).unwrap())
        .collect();
    let expected: Vec<String> = (0..100).map(|n| format!("{{\"n\":{n}}}")).collect();
    assert_eq!(
        bodies, expected,
        "every payload once, in the order handed over"
    );
    let transactions: std::collections::HashSet<&str> =
        rows.iter().map(|(_, xmin)| xmin.as_str()).collect();
    assert_eq!(transactions.len(), 1, "one commit for the whole batch");
}
