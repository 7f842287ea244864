//! The embedded dev stack's fallback: nothing listening where it looks → it starts its own.

use std::net::SocketAddr;

use futures::StreamExt;
use omnistream_gateway::devstack::{DevStack, Probe};
use sqlx::Connection;

fn unused_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn starts_its_own_postgres_and_nats_when_nothing_answers() {
    let data_dir = tempfile::tempdir().unwrap();
    let probe = Probe {
        postgres: unused_address(),
        nats: unused_address(),
    };
    let stack = DevStack::ensure(data_dir.path(), probe)
        .await
        .expect("the dev stack starts");
    assert!(stack.started_postgres && stack.started_nats);
    assert!(!stack
        .database_url
        .contains(&format!(":{}/", probe.postgres.port())));

    let mut conn = sqlx::PgConnection::connect(&stack.database_url)
        .await
        .expect("connect to the private PostgreSQL");
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(database, "omnistream");
    conn.close().await.unwrap();

    let nats = async_nats::connect(&stack.nats_url)
        .await
        .expect("connect to the private NATS");
    let jetstream = async_nats::jetstream::new(nats.clone());
    let mut streams = jetstream.stream_names();
    assert!(
        streams.next().await.is_none(),
        "JetStream is enabled and empty"
    );
    drop(nats);

    assert!(data_dir.path().join("postgres/PG_VERSION").exists());
    let database_url = stack.database_url.clone();
    stack.stop().await;
    assert!(
        sqlx::PgConnection::connect(&database_url).await.is_err(),
        "stopped on exit"
    );
}
