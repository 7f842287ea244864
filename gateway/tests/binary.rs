//! The real `omnistream` binary, as an operator runs it.

use std::process::Stdio;
use std::time::Duration;

use omnistream_gateway::app::devstack::process_alive;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_omnistream");

/// A new, empty database on the test server: the admin connection, its name and its URL.
async fn fresh_database(label: &str) -> (sqlx::PgConnection, String, String) {
    let admin_url = std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("omnistream_{label}_{}", std::process::id());
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let database_url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    (admin, name, database_url)
}

fn free_address() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

fn omnistream(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(BINARY);
    for name in ["DATABASE_URL", "NATS_URL", "JWT_SECRET", "RUST_LOG"] {
        command.env_remove(name);
    }
    command
        .env("OMNISTREAM_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

async fn wait_healthy(base_url: &str) {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(format!("{base_url}/api/health")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the platform did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn terminate(mut child: Child) {
    let pid = child.id().expect("running").to_string();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "clean exit: {status}");
}

/// `cargo run --release` with nothing listening on the default ports: the binary starts its own
/// PostgreSQL and NATS, migrates, creates the demo tenant, prints its login, serves the API and
/// the docs, and stops everything on SIGTERM.
#[tokio::test]
async fn serve_brings_up_the_whole_platform_on_an_empty_machine() {
    let data_dir = tempfile::tempdir().unwrap();
    let bind = free_address();
    let mut child = omnistream(data_dir.path())
        .arg("serve")
        .env("BIND_ADDR", &bind)
        .env("OMNISTREAM_DEV_POSTGRES_ADDR", free_address())
        .env("OMNISTREAM_DEV_NATS_ADDR", free_address())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let login_line = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Admin login:") {
                return line;
            }
        }
        panic!("the banner never named the demo login");
    })
    .await
    .expect("started within 90 s");
    let credentials = login_line.rsplit("Admin login: ").next().unwrap();
    let (email, password) = credentials.split_once(" / ").unwrap();

    let base_url = format!("http://{bind}");
    wait_healthy(&base_url).await;
    let client = reqwest::Client::new();
    let login = client
        .post(format!("{base_url}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let docs = client
        .get(format!("{base_url}/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        data_dir.path().join("postgres/PG_VERSION").exists(),
        "its own PostgreSQL, under the data directory"
    );

    terminate(child).await;
    assert!(
        std::net::TcpStream::connect(&bind).is_err(),
        "the API is down after exit"
    );
}

/// With real infrastructure configured, `migrate`, `replay all` and `serve` work, and no demo
/// tenant is invented in a real database.
#[tokio::test]
async fn subcommands_run_against_configured_infrastructure() {
    let (mut admin, name, database_url) = fresh_database("bin").await;
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let data_dir = tempfile::tempdir().unwrap();
    let configured = |command: &mut Command| {
        command
            .env("DATABASE_URL", &database_url)
            .env("NATS_URL", &nats_url);
    };

    for args in [vec!["migrate"], vec!["replay", "all"]] {
        let mut command = omnistream(data_dir.path());
        configured(&mut command);
        let status = command.args(&args).status().await.unwrap();
        assert!(status.success(), "omnistream {args:?}: {status}");
    }
    let mut unknown = omnistream(data_dir.path());
    configured(&mut unknown);
    assert!(!unknown
        .args(["replay", "no_such_projection"])
        .status()
        .await
        .unwrap()
        .success());

    let mut without_secret = omnistream(data_dir.path());
    configured(&mut without_secret);
    let refused = without_secret
        .arg("serve")
        .env("BIND_ADDR", free_address())
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("JWT_SECRET"));

    let bind = free_address();
    let mut command = omnistream(data_dir.path());
    configured(&mut command);
    let child = command
        .arg("gateway")
        .env("BIND_ADDR", &bind)
        .env("JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes!!")
        .env("ENCRYPTION_KEY", "an-encryption-key-of-at-least-32-bytes")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_healthy(&format!("http://{bind}")).await;
    let tenants: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(
            &mut <sqlx::PgConnection as sqlx::Connection>::connect(&database_url)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(tenants, 0, "no demo tenant in a configured database");
    terminate(child).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// A `kill -9` leaves the private PostgreSQL and NATS running; the next start adopts them (no
/// clash with their locks), keeps the data (the same demo login works), and stops them on exit.
#[tokio::test]
async fn a_crashed_serve_restarts_on_its_leftover_dev_stack() {
    let data_dir = tempfile::tempdir().unwrap();
    let (postgres_probe, nats_probe) = (free_address(), free_address());
    let start = |bind: &str| {
        let mut command = omnistream(data_dir.path());
        command
            .arg("serve")
            .env("BIND_ADDR", bind)
            .env("OMNISTREAM_DEV_POSTGRES_ADDR", &postgres_probe)
            .env("OMNISTREAM_DEV_NATS_ADDR", &nats_probe)
            .stdout(Stdio::piped());
        command.spawn().unwrap()
    };
    let first_bind = free_address();
    let mut first = start(&first_bind);
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let login_line = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Admin login:") {
                return line;
            }
        }
        panic!("no banner");
    })
    .await
    .unwrap();
    let (email, password) = login_line
        .rsplit("Admin login: ")
        .next()
        .unwrap()
        .split_once(" / ")
        .unwrap();
    wait_healthy(&format!("http://{first_bind}")).await;
    first.kill().await.unwrap();
    let postmaster =
        std::fs::read_to_string(data_dir.path().join("postgres/postmaster.pid")).unwrap();
    let postgres_pid: u32 = postmaster.lines().next().unwrap().parse().unwrap();
    assert!(process_alive(postgres_pid), "PostgreSQL outlived the crash");

    let second_bind = free_address();
    let second = start(&second_bind);
    let base_url = format!("http://{second_bind}");
    wait_healthy(&base_url).await;
    let login = reqwest::Client::new()
        .post(format!("{base_url}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the demo tenant survived the crash");
    terminate(second).await;
    assert!(
        !process_alive(postgres_pid),
        "the adopted PostgreSQL is stopped on exit"
    );
}

fn meta_signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn inbound(n: usize) -> Vec<u8> {
    let body = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "700000000000001"},
        "contacts": [{"profile": {"name": format!("C{}", n % 7)}, "wa_id": format!("62870000{:02}", n % 7)}],
        "messages": [{"from": format!("62870000{:02}", n % 7), "id": format!("wamid.crash.{n}"),
                      "timestamp": chrono::Utc::now().timestamp().to_string(), "type": "text", "text": {"body": format!("m{n}")}}]}}]}]});
    serde_json::to_vec(&body).unwrap()
}

/// `kill -9` during sustained webhook ingest: after a restart every acknowledged webhook is in the
/// inbox exactly once, and Meta's retries of all of them are accepted and deduplicated.
#[tokio::test]
async fn a_kill_during_ingest_loses_no_acknowledged_webhook_and_duplicates_nothing() {
    let (mut admin, name, database_url) = fresh_database("crash").await;
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let data_dir = tempfile::tempdir().unwrap();
    let secret = "crash-test-app-secret";
    let start = |bind: &str| {
        let mut command = omnistream(data_dir.path());
        command
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("NATS_URL", &nats_url)
            .env("NATS_PREFIX", format!("crash_{}", std::process::id()))
            .env("BIND_ADDR", bind)
            .env("JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes!!")
            .env("ENCRYPTION_KEY", "an-encryption-key-of-at-least-32-bytes")
            .env("META_APP_SECRET", secret)
            .stdout(Stdio::null());
        command.spawn().unwrap()
    };
    let bind = free_address();
    let mut first = start(&bind);
    let base_url = format!("http://{bind}");
    wait_healthy(&base_url).await;
    let client = reqwest::Client::new();
    let registered: serde_json::Value = client
        .post(format!("{base_url}/api/auth/register"))
        .json(&serde_json::json!({"organization_name": "Crash Co", "name": "A", "email": format!("crash{}@example.com", std::process::id()), "password": "password123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tenant: uuid::Uuid = registered["organization"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO integration_accounts (id, tenant_id, channel, account_key, display_name, is_active, is_default, verify_token)
         VALUES ($1, $2, 'whatsapp', 'wa-700000000000001', 'line', true, true, 'token')",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(tenant)
    .execute(&pool)
    .await
    .unwrap();

    const TOTAL: usize = 120;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let senders: Vec<_> = (0..4)
        .map(|lane| {
            let (client, base_url, acknowledged) =
                (client.clone(), base_url.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for n in (lane..TOTAL).step_by(4) {
                    let body = inbound(n);
                    let sent = client
                        .post(format!("{base_url}/webhooks/meta"))
                        .header("x-hub-signature-256", meta_signature(secret, &body))
                        .body(body)
                        .send()
                        .await;
                    if matches!(sent, Ok(r) if r.status() == 200) {
                        acknowledged.lock().unwrap().push(n);
                    }
                }
            })
        })
        .collect();
    while acknowledged.lock().unwrap().len() < TOTAL / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().await.unwrap();
    for sender in senders {
        let _ = sender.await;
    }
    let acknowledged: Vec<usize> = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() < TOTAL, "the kill interrupted ingest");

    let second = start(&bind);
    wait_healthy(&base_url).await;
    // Every acknowledged webhook is there once, before any retry.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let present: Vec<String> =
            sqlx::query_scalar("SELECT external_id FROM messages WHERE direction = 'inbound'")
                .fetch_all(&pool)
                .await
                .unwrap();
        if acknowledged
            .iter()
            .all(|n| present.contains(&format!("wamid.crash.{n}")))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "acknowledged webhooks missing after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Meta retries everything (the unacknowledged and, to be safe, the acknowledged too).
    for n in 0..TOTAL {
        let body = inbound(n);
        let response = client
            .post(format!("{base_url}/webhooks/meta"))
            .header("x-hub-signature-256", meta_signature(secret, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (total, distinct): (i64, i64) =
            sqlx::query_as("SELECT count(*), count(DISTINCT external_id) FROM messages WHERE direction = 'inbound'")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(total, distinct, "no message twice");
        if total == TOTAL as i64 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {total} of {TOTAL} messages after the retries"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate(second).await;
    pool.close().await;
    if let Ok(nats) = async_nats::connect(&nats_url).await {
        let _ = async_nats::jetstream::new(nats)
            .delete_stream(format!("CRASH_{}_EVENTS", std::process::id()))
            .await;
    }
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// 1,000 sockets that send nothing or half a request line, from one address, against a process
/// started with a soft limit of 512 open files: the process raises its limit, refuses the
/// address's connections beyond its per-peer cap, closes the rest after the header-read timeout,
/// and answers everybody else meanwhile.
#[tokio::test]
async fn a_thousand_idle_sockets_neither_starve_the_server_nor_stay_open() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (mut admin, name, database_url) = fresh_database("idle").await;
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let data_dir = tempfile::tempdir().unwrap();
    let bind = free_address();
    let mut command = omnistream(data_dir.path());
    command
        .arg("serve")
        .env("DATABASE_URL", &database_url)
        .env("NATS_URL", &nats_url)
        .env("NATS_PREFIX", format!("idle_{}", std::process::id()))
        .env("BIND_ADDR", &bind)
        .env("JWT_SECRET", "a-secret-of-at-least-thirty-two-bytes!!")
        .env("ENCRYPTION_KEY", "an-encryption-key-of-at-least-32-bytes")
        .env("HTTP_HEADER_READ_TIMEOUT_SECONDS", "2")
        .stdout(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
            rlimit::setrlimit(rlimit::Resource::NOFILE, 512, hard)
        });
    }
    let child = command.spawn().unwrap();
    let base_url = format!("http://{bind}");
    wait_healthy(&base_url).await;
    rlimit::increase_nofile_limit(4096).unwrap();

    let address: std::net::SocketAddr = bind.parse().unwrap();
    let mut idle = Vec::new();
    for n in 0..1000 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(address).await.unwrap();
        if n % 2 == 1 {
            let _ = stream.write_all(b"GET /api/hea").await;
        }
        idle.push(stream);
    }
    let health = reqwest::Client::new()
        .get(format!("{base_url}/api/health"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("health answers while 1,000 idle sockets are open");
    assert_eq!(health.status(), 200);

    // Each idle socket is closed by the server: refused at once beyond the per-peer cap, the
    // rest after the header-read timeout.
    let mut buffer = [0u8; 64];
    for stream in &mut idle {
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buffer))
            .await
            .expect("the server closes an idle connection");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "an idle socket got an answer instead of being closed"
        );
    }
    terminate(child).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
