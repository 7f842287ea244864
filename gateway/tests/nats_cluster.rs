//! The platform on a three-node NATS JetStream cluster (stream replicas 3): the node leading the
//! events stream is killed with SIGKILL under traffic, and nothing is lost — every customer
//! message is on the stream once and reaches outgoing webhooks once, in order per customer.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use omnistream_tests::deployment::{self, Deployment};
use omnistream_tests::fake_meta::FakeMeta;
use omnistream_tests::nats_cluster::NatsCluster;
use omnistream_tests::patience::Patience;
use omnistream_tests::webhook_receiver::Receiver;
use omnistream_tests::Client;
use serde_json::Value;

const PHONE_NUMBER_ID: &str = "900000000000002";
const CUSTOMERS: usize = 5;
const MESSAGES: usize = 20;

#[tokio::test]
async fn losing_the_stream_leader_of_a_three_node_nats_cluster_loses_nothing() {
    let mut cluster = NatsCluster::start().await;
    let fake = FakeMeta::start().await;
    let mut deployment = Deployment::new(env!("CARGO_BIN_EXE_omnistream"), &fake.base_url).await;
    deployment.nats_url = cluster.urls();
    deployment
        .extra_env
        .push(("NATS_STREAM_REPLICAS".into(), "3".into()));
    let platform = deployment.start("serve").await;

    let token = platform.register("Cluster", "admin@cluster.example").await;
    let api = Client::remote(&platform.url, &token);
    deployment::connect_whatsapp(&api, PHONE_NUMBER_ID).await;
    let receiver = Receiver::start().await;
    receiver.subscribe(&api, &["message.received"]).await;

    // The relay has created the stream with three replicas; find the node that leads it.
    let observer = async_nats::connect(cluster.running_urls().as_slice())
        .await
        .unwrap();
    let events = jetstream::new(observer);
    let stream_name = format!("{}_EVENTS", deployment.nats_prefix.to_uppercase());
    let mut patience = Patience::new(Duration::from_secs(30));
    let leader = loop {
        if let Ok(mut stream) = events.get_stream(&stream_name).await {
            if let Ok(info) = stream.info().await {
                assert_eq!(info.config.num_replicas, 3, "NATS_STREAM_REPLICAS applied");
                if let Some(leader) = info.cluster.as_ref().and_then(|c| c.leader.clone()) {
                    break leader;
                }
            }
        }
        assert!(patience.progressing(()), "the events stream never appeared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Customers write one message after the other, all at once; the stream's leader dies a
    // third of the way in.
    let http = reqwest::Client::new();
    let burst = (0..CUSTOMERS).map(|customer| {
        let (http, ingest) = (http.clone(), platform.url.clone());
        async move {
            for n in 0..MESSAGES {
                deployment::post_customer_message(&http, &ingest, PHONE_NUMBER_ID, customer, n)
                    .await;
            }
        }
    });
    let burst = tokio::spawn(futures::future::join_all(burst));
    let mut patience = Patience::new(Duration::from_secs(30));
    loop {
        let delivered = receiver.received().await.len();
        if delivered >= CUSTOMERS * MESSAGES / 3 {
            break;
        }
        assert!(patience.progressing(delivered), "nothing was delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(&leader).await;
    burst.await.unwrap();

    // Outgoing webhooks: each message once per webhook-id, each customer's in order.
    let distinct = |r: &[omnistream_tests::webhook_receiver::Received]| {
        r.iter()
            .filter(|e| e.ok)
            .map(|e| e.id.as_str())
            .collect::<HashSet<_>>()
            .len()
    };
    let received = receiver
        .wait_until_within("every message.received", Duration::from_secs(120), |r| {
            distinct(r) >= CUSTOMERS * MESSAGES
        })
        .await;
    let mut seen = HashSet::new();
    let delivered: Vec<&str> = received
        .iter()
        .filter(|r| r.ok && seen.insert(r.id.as_str()))
        .map(|r| r.body["data"]["content"].as_str().unwrap())
        .collect();
    deployment::assert_complete_and_ordered(
        "webhooks",
        &deployment::per_customer(delivered),
        CUSTOMERS,
        MESSAGES,
    );

    // The stream, read back from the surviving nodes: every message once, in order.
    let survivor = async_nats::connect(cluster.running_urls().as_slice())
        .await
        .unwrap();
    // The cluster may still be electing the stream's new leader: ask again until it answers.
    let survivors = jetstream::new(survivor);
    let mut patience = Patience::new(Duration::from_secs(30));
    let mut reader = loop {
        let created = match survivors.get_stream(&stream_name).await {
            Ok(stream) => stream
                .create_consumer(consumer::pull::Config {
                    ack_policy: consumer::AckPolicy::None,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match created {
            Ok(reader) => break reader,
            Err(error) => assert!(patience.progressing(()), "reading the stream: {error}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut messages = reader.messages().await.unwrap();
    let mut streamed = Vec::new();
    let mut patience = Patience::new(Duration::from_secs(30));
    while streamed.len() < CUSTOMERS * MESSAGES {
        let next = tokio::time::timeout(Duration::from_secs(1), messages.next()).await;
        let Ok(Some(Ok(message))) = next else {
            assert!(
                patience.progressing(streamed.len()),
                "the stream holds only {} messages",
                streamed.len()
            );
            continue;
        };
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        let content = &event["payload"]["InboundMessageReceived"]["content"]["content"];
        if let Some(text) = content.as_str() {
            streamed.push(text.to_owned());
        }
    }
    deployment::assert_complete_and_ordered(
        "stream",
        &deployment::per_customer(streamed.iter().map(String::as_str)),
        CUSTOMERS,
        MESSAGES,
    );
    drop(messages);
    assert_eq!(
        reader.info().await.unwrap().num_pending,
        0,
        "no message is on the stream twice"
    );
}
