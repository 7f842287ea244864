//! A deployment of the real `omnistream` binary: processes of any role on one database and one
//! NATS (a server or a cluster), started the way an operator starts them.

use std::time::Duration;

use tokio::process::{Child, Command};

use crate::patience::Patience;
use crate::{TEST_ENCRYPTION_KEY, TEST_JWT_SECRET};

/// The Meta app secret every process of a deployment checks webhook signatures with.
pub const DEPLOYMENT_APP_SECRET: &str = "deployment-meta-app-secret";

/// What every process of the deployment shares.
pub struct Deployment {
    /// The `omnistream` binary (`env!("CARGO_BIN_EXE_omnistream")` in the gateway's tests).
    pub binary: String,
    pub database_url: String,
    /// `NATS_URL`: one server, or a cluster's servers separated by commas.
    pub nats_url: String,
    pub nats_prefix: String,
    /// `META_GRAPH_BASE_URL` (a fake Graph API).
    pub graph: String,
    /// Further environment, e.g. `NATS_STREAM_REPLICAS`.
    pub extra_env: Vec<(String, String)>,
    pub data_dir: tempfile::TempDir,
}

/// One running process and its address; killed when dropped.
pub struct Process {
    pub child: Child,
    pub url: String,
}

impl Deployment {
    /// A deployment on a fresh test database, the NATS of [`crate::nats_url`] and a unique
    /// stream prefix.
    pub async fn new(binary: &str, graph: &str) -> Self {
        Self {
            binary: binary.to_owned(),
            database_url: crate::create_test_database().await,
            nats_url: crate::nats_url(),
            nats_prefix: format!("deploy_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
            graph: graph.to_owned(),
            extra_env: Vec::new(),
            data_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts `omnistream <role>` and waits until it answers its health check.
    pub async fn start(&self, role: &str) -> Process {
        let bind = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let child = Command::new(&self.binary)
            .arg(role)
            .env("DATABASE_URL", &self.database_url)
            .env("NATS_URL", &self.nats_url)
            .env("NATS_PREFIX", &self.nats_prefix)
            .env("JWT_SECRET", TEST_JWT_SECRET)
            .env("ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
            .env("BIND_ADDR", &bind)
            .env("META_APP_SECRET", DEPLOYMENT_APP_SECRET)
            .env("META_GRAPH_BASE_URL", &self.graph)
            .env("OUTGOING_WEBHOOKS_ALLOW_PRIVATE", "true")
            .env(
                "OUTGOING_WEBHOOKS_RETRY_SCHEDULE",
                "200ms,500ms,1s,2s,5s,5s,5s",
            )
            .env("DATABASE_MAX_CONNECTIONS", "8")
            .env("OMNISTREAM_DATA_DIR", self.data_dir.path())
            .env("RUST_LOG", "warn")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://{bind}");
        let client = reqwest::Client::new();
        let mut patience = Patience::new(Duration::from_secs(60));
        loop {
            let health = client.get(format!("{url}/api/health")).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Process { child, url };
            }
            assert!(
                patience.progressing(()),
                "omnistream {role} never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Process {
    /// Registers an organization through this process's API; returns its admin's token.
    pub async fn register(&self, organization: &str, email: &str) -> String {
        let registered: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/api/auth/register", self.url))
            .json(
                &serde_json::json!({"organization_name": organization, "name": "Admin",
                                      "email": email, "password": "password123"}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        registered["token"].as_str().expect("a token").to_owned()
    }
}

/// Connects WhatsApp number `phone_number_id` to `api`'s organization.
pub async fn connect_whatsapp(api: &crate::Client, phone_number_id: &str) {
    let account = api
        .post(
            "/api/integrations/accounts",
            serde_json::json!({"channel": "whatsapp", "is_active": true, "display_name": "Line",
                   "config": {"phone_number_id": phone_number_id, "waba_id": "100000000000090",
                              "access_token": "EAAG-secret-access-token-9000"}}),
        )
        .await;
    assert_eq!(account.status, 201, "{}", account.body);
}

/// Posts customer `customer`'s message number `n` (text `"<customer>:<nn>"`) to the Meta
/// webhook of `ingest`, for the WhatsApp number `phone_number_id`, signed as Meta signs it.
pub async fn post_customer_message(
    http: &reqwest::Client,
    ingest: &str,
    phone_number_id: &str,
    customer: usize,
    n: usize,
) {
    let webhook = crate::fake_meta::whatsapp_text_webhook(
        phone_number_id,
        &format!("62819000{customer:02}"),
        &format!("Customer {customer}"),
        &format!("wamid.S{customer}.{n}"),
        &format!("{customer}:{n:02}"),
        chrono::Utc::now().timestamp(),
    );
    let (body, signature) = crate::fake_meta::signed(DEPLOYMENT_APP_SECRET, &webhook);
    let response = http
        .post(format!("{ingest}/webhooks/meta"))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "acknowledged");
}

/// Texts of the form `"<customer>:<nn>"`, grouped per customer in the order given.
pub fn per_customer<'a>(
    texts: impl IntoIterator<Item = &'a str>,
) -> std::collections::HashMap<String, Vec<String>> {
    let mut by_customer: std::collections::HashMap<String, Vec<String>> = Default::default();
    for text in texts {
        let (customer, _) = text.split_once(':').unwrap();
        by_customer
            .entry(customer.to_owned())
            .or_default()
            .push(text.to_owned());
    }
    by_customer
}

/// Asserts that `customers` customers each have `messages` texts, once each and in order.
pub fn assert_complete_and_ordered(
    what: &str,
    by_customer: &std::collections::HashMap<String, Vec<String>>,
    customers: usize,
    messages: usize,
) {
    assert_eq!(by_customer.len(), customers, "{what}: every customer");
    for (customer, texts) in by_customer {
        let expected: Vec<String> = (0..messages)
            .map(|n| format!("{customer}:{n:02}"))
            .collect();
        assert_eq!(
            texts, &expected,
            "{what}: customer {customer}, once each, in order"
        );
    }
}
