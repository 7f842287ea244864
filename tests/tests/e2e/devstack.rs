//! The embedded dev stack's fallback: nothing listening where it looks → it starts its own.

use std::net::SocketAddr;

use futures::StreamExt;
use omnistream_gateway::app::devstack::{DevStack, Probe};
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

    // Private means private: the data directory and its secrets are the user's alone, the
    // database wants the generated password, and NATS its generated credentials.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    // Others may at most traverse it (0711), when PostgreSQL runs as its own user.
    assert_eq!(mode(data_dir.path()) & 0o066, 0);
    assert_eq!(mode(&data_dir.path().join("postgres.password")), 0o600);
    assert_eq!(mode(&data_dir.path().join("nats.conf")), 0o600);
    let port = stack
        .database_url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    assert!(
        sqlx::PgConnection::connect(&format!(
            "postgres://postgres:postgres@127.0.0.1:{port}/omnistream"
        ))
        .await
        .is_err(),
        "the private PostgreSQL refuses a guessed password"
    );
    let address: async_nats::ServerAddr = stack.nats_url.parse().unwrap();
    let anonymous = format!("nats://127.0.0.1:{}", address.port());
    assert!(
        async_nats::connect(&anonymous).await.is_err(),
        "the private NATS refuses clients without its credentials"
    );
    let nats = async_nats::ConnectOptions::with_user_and_password(
        address.username().unwrap().to_owned(),
        address.password().unwrap().to_owned(),
    )
    .connect(address)
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
