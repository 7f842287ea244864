//! `omnistream serve` as a separate process, as an operator runs it, so that its own memory can
//! be read from `/proc` while the load generator runs here.

use std::path::PathBuf;
use std::time::Duration;

use omnistream_tests::{TEST_ENCRYPTION_KEY, TEST_JWT_SECRET, TEST_META_APP_SECRET};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// A running `omnistream serve`.
pub struct ServeProcess {
    pub base_url: String,
    pub database_url: String,
    pub pid: String,
    child: Child,
    _data_dir: tempfile::TempDir,
}

/// The release binary: `OMNISTREAM_BIN`, else `target/release/omnistream` (`just bench` builds it).
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("OMNISTREAM_BIN") {
        return path.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("release/omnistream");
    assert!(
        path.exists(),
        "{} is missing: run `just bench`, which builds it first",
        path.display()
    );
    path
}

impl ServeProcess {
    /// Starts `omnistream serve` on a new database and waits until it is healthy.
    pub async fn start(label: &str) -> Self {
        let database_url = omnistream_tests::create_test_database().await;
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let child = Command::new(binary())
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("NATS_URL", omnistream_tests::nats_url())
            .env(
                "NATS_PREFIX",
                format!("bench_{label}_{}", std::process::id()),
            )
            .env("BIND_ADDR", address.to_string())
            .env("DATABASE_MAX_CONNECTIONS", "16")
            // The load generator is one client address opening hundreds of connections: the
            // per-peer cap protects against exactly that, and would measure itself here.
            .env("HTTP_MAX_CONNECTIONS_PER_PEER", "4096")
            .env("JWT_SECRET", TEST_JWT_SECRET)
            .env("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
            .env("META_APP_SECRET", TEST_META_APP_SECRET)
            .env("OMNISTREAM_DATA_DIR", data_dir.path())
            .env("RUST_LOG", "error")
            .kill_on_drop(true)
            .spawn()
            .expect("omnistream serve starts");
        let pid = child.id().expect("running").to_string();
        let base_url = format!("http://{address}");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(format!("{base_url}/api/health")).send().await {
                if response.status().is_success() {
                    break;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "omnistream serve did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self {
            base_url,
            database_url,
            pid,
            child,
            _data_dir: data_dir,
        }
    }

    /// Registers an organization; returns `(token, organization id)`.
    pub async fn register(&self, organization: &str) -> (String, String) {
        let body: Value = reqwest::Client::new()
            .post(format!("{}/api/auth/register", self.base_url))
            .json(&json!({"organization_name": organization, "name": "Admin",
                          "email": format!("bench-{}@example.com", uuid::Uuid::new_v4().simple()),
                          "password": "password123"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            body["token"].as_str().expect("token").to_owned(),
            body["agent"]["organization_id"]
                .as_str()
                .expect("organization")
                .to_owned(),
        )
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
