//! Test harness: starts the real application in-process on a free port, against a fresh
//! PostgreSQL database of its own (so tests run in parallel) and the real NATS server, and gives
//! tests a small HTTP client that reads like the API.
//!
//! `TEST_DATABASE_URL` (else `DATABASE_URL`, else `postgres://postgres:postgres@127.0.0.1:5432/postgres`)
//! names the server where test databases are created; `NATS_URL` (else `nats://127.0.0.1:4222`)
//! the NATS server.

pub mod deployment;
pub mod fake_meta;
pub mod multipart;
pub mod nats_cluster;
pub mod patience;
pub mod smtp_sink;
pub mod sse;
pub mod webhook_receiver;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omnistream_gateway::app::config::{Config, Secret};
use omnistream_gateway::app::{Application, Roles, Settings};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The encryption key of every test app.
pub const TEST_ENCRYPTION_KEY: &str = "test-encryption-key-of-at-least-32-bytes";
/// Meta's app secret for test apps (tests sign webhooks with it).
pub const TEST_META_APP_SECRET: &str = "test-meta-app-secret";
/// `EMAIL_WEBHOOK_SECRET` of every test app.
pub const TEST_EMAIL_WEBHOOK_SECRET: &str = "test-email-webhook-secret";
/// `MAILGUN_WEBHOOK_SIGNING_KEY` of every test app.
pub const TEST_MAILGUN_SIGNING_KEY: &str = "test-mailgun-signing-key";
/// The platform verify token of test apps.
pub const TEST_META_VERIFY_TOKEN: &str = "test-platform-verify-token";

/// The JWT secret of every test app (tests sign hostile tokens with it).
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256-keys";

/// URL of the server that holds the test databases.
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".to_owned())
}

/// URL of the NATS server.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Where the test app on database `database_url` keeps its files (`OMNISTREAM_DATA_DIR`, so
/// its media): a folder per test database under the system's temporary directory, kept across
/// a restart on the same database and removed with the database when it is a day old.
pub fn data_dir_of(database_url: &str) -> std::path::PathBuf {
    let base = database_url.split('?').next().unwrap_or(database_url);
    let name = base.rsplit('/').next().unwrap_or("omnistream_test");
    std::env::temp_dir().join("omnistream-tests").join(name)
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
    match query {
        Some(query) => format!("{prefix}/{database}?{query}"),
        None => format!("{prefix}/{database}"),
    }
}

/// Creates an empty, uniquely named database and returns its URL. Test databases older than a
/// day are dropped along the way, so repeated runs do not pile them up.
pub async fn create_test_database() -> String {
    let admin_url = admin_database_url();
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connect to the test PostgreSQL server");
    static CLEANED: OnceLock<()> = OnceLock::new();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    if CLEANED.set(()).is_ok() {
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'omnistream\\_test\\_%'",
        )
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
        for name in stale {
            let created = name
                .split('_')
                .nth(2)
                .and_then(|ts| ts.parse::<u64>().ok())
                .unwrap_or(now);
            if now.saturating_sub(created) > 24 * 3600 {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
                let _ = std::fs::remove_dir_all(data_dir_of(&with_database(&admin_url, &name)));
            }
        }
    }
    let name = format!("omnistream_test_{now}_{}", Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create test database");
    with_database(&admin_url, &name)
}

/// A running application with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The app's database.
    pub pool: PgPool,
    /// The database URL.
    pub database_url: String,
    /// Plain client without cookies.
    pub http: reqwest::Client,
    /// `OMNISTREAM_DATA_DIR` of the app (see [`data_dir_of`]).
    pub data_dir: std::path::PathBuf,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Stops the server and its workers (as a crash would, but gracefully).
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    /// Starts the whole platform (API, ingest and workers).
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the platform after `customize` adjusted its configuration.
    pub async fn spawn_with(customize: impl FnOnce(&mut Config)) -> Self {
        let database_url = create_test_database().await;
        Self::spawn_on(database_url, Roles::ALL, customize).await
    }

    /// Starts the parts of the platform named by `roles` on an existing database (a restart).
    pub async fn spawn_on(
        database_url: String,
        roles: Roles,
        customize: impl FnOnce(&mut Config),
    ) -> Self {
        Self::spawn_with_infrastructure(database_url, nats_url(), roles, customize).await
    }

    /// Starts the whole platform on an existing database with its own NATS server.
    pub async fn spawn_on_nats(
        database_url: String,
        nats: String,
        customize: impl FnOnce(&mut Config),
    ) -> Self {
        Self::spawn_with_infrastructure(database_url, nats, Roles::ALL, customize).await
    }

    async fn spawn_with_infrastructure(
        database_url: String,
        nats: String,
        roles: Roles,
        customize: impl FnOnce(&mut Config),
    ) -> Self {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        let data_dir = data_dir_of(&database_url);
        let mut config = Config::from_lookup(|name| match name {
            "BIND_ADDR" => Some("127.0.0.1:0".to_owned()),
            "OMNISTREAM_DATA_DIR" => Some(data_dir.display().to_string()),
            "DATABASE_MAX_CONNECTIONS" => Some("6".to_owned()),
            "META_APP_SECRET" => Some(TEST_META_APP_SECRET.to_owned()),
            "EMAIL_WEBHOOK_SECRET" => Some(TEST_EMAIL_WEBHOOK_SECRET.to_owned()),
            "MAILGUN_WEBHOOK_SIGNING_KEY" => Some(TEST_MAILGUN_SIGNING_KEY.to_owned()),
            "NATS_PREFIX" => Some("omnistream_test".to_owned()),
            "OUTGOING_WEBHOOKS_ALLOW_PRIVATE" => Some("true".to_owned()),
            "OUTGOING_WEBHOOKS_RETRY_SCHEDULE" => Some("200ms,400ms,800ms".to_owned()),
            "META_VERIFY_TOKEN" => Some(TEST_META_VERIFY_TOKEN.to_owned()),
            "META_APP_ID" => Some("test-meta-app-id".to_owned()),
            "META_CONFIG_ID" => Some("test-meta-config-id".to_owned()),
            _ => None,
        })
        .expect("test configuration");
        customize(&mut config);
        let data_dir = config.data_dir.clone();
        let settings = Settings {
            config,
            database_url: database_url.clone(),
            nats_url: nats,
            jwt_secret: Secret::new(TEST_JWT_SECRET),
            encryption_key: Secret::new(TEST_ENCRYPTION_KEY),
            roles,
        };
        let app = Application::build(settings)
            .await
            .expect("build the application");
        let address = app.local_addr().expect("bound address");
        let pool = app.state().pool.clone();
        let shutdown = app.shutdown_token();
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self {
            base_url: format!("http://{address}"),
            pool,
            database_url,
            http,
            data_dir,
            shutdown,
        }
    }

    /// How many events `projection` has applied, per its checkpoint (`None`: no checkpoint yet).
    pub async fn events_applied(&self, projection: &str) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT events_applied FROM projection_checkpoints WHERE projection = $1",
        )
        .bind(projection)
        .fetch_optional(&self.pool)
        .await
        .expect("read the checkpoint")
    }

    /// Posts a Meta webhook signed with the test app secret.
    pub async fn post_meta_webhook(&self, payload: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(payload).expect("payload");
        let signature = fake_meta::sign(TEST_META_APP_SECRET, &body);
        self.http
            .post(format!("{}/webhooks/meta", self.base_url))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await
            .expect("webhook posted")
    }

    /// Posts an inbound email to `/webhooks/email` with the test secret.
    pub async fn post_email(
        &self,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/webhooks/email", self.base_url))
            .header("content-type", content_type)
            .header("x-webhook-secret", TEST_EMAIL_WEBHOOK_SECRET)
            .body(body.into())
            .send()
            .await
            .expect("email posted")
    }

    /// Polls `path` with `client` until `accept` holds for the body (panics once the answer has
    /// not changed for 20 s).
    pub async fn eventually(
        &self,
        client: &Client,
        path: &str,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let mut patience = patience::Patience::new(Duration::from_secs(20));
        loop {
            let response = client.get(path).await;
            if response.status.is_success() && accept(&response.body) {
                return response.body;
            }
            assert!(
                patience.progressing((response.status, response.body.clone())),
                "{path} never matched; last: {} {}",
                response.status,
                response.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first message of `conversation` for which `ready` holds, once there is one (polled
    /// like [`Self::eventually`]).
    pub async fn message_when(
        &self,
        client: &Client,
        conversation: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let listed = self
            .eventually(
                client,
                &format!("/api/conversations/{conversation}/messages"),
                |body| {
                    body["data"]
                        .as_array()
                        .is_some_and(|d| d.iter().any(&ready))
                },
            )
            .await;
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| ready(m))
            .cloned()
            .unwrap()
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Client {
        Client {
            app_url: self.base_url.clone(),
            http: self.http.clone(),
            credential: Credential::None,
        }
    }

    /// A client with a bearer token.
    pub fn bearer(&self, token: &str) -> Client {
        Client {
            credential: Credential::Bearer(token.to_owned()),
            ..self.anonymous()
        }
    }

    /// A client with an API key.
    pub fn api_key(&self, key: &str) -> Client {
        Client {
            credential: Credential::ApiKey(key.to_owned()),
            ..self.anonymous()
        }
    }

    /// A client that sends the session cookie.
    pub fn cookie(&self, token: &str) -> Client {
        Client {
            credential: Credential::Cookie(token.to_owned()),
            ..self.anonymous()
        }
    }

    /// Registers a new organization; returns its admin.
    pub async fn register(&self, organization: &str) -> Member {
        let email = format!("admin-{}@example.com", Uuid::new_v4().simple());
        let response = self
            .anonymous()
            .post(
                "/api/auth/register",
                json!({"organization_name": organization, "name": "Admin", "email": email, "password": "password123"}),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "register failed: {}",
            response.body
        );
        Member::from_login(self, &response.body, &email, "password123")
    }

    /// Creates an agent in `admin`'s organization with `extra` fields and logs it in.
    pub async fn create_agent(&self, admin: &Member, role: &str, extra: Value) -> Member {
        let email = format!("{role}-{}@example.com", Uuid::new_v4().simple());
        let mut body = json!({"name": format!("{role} agent"), "email": email, "password": "password123", "role": role});
        if let (Some(target), Value::Object(more)) = (body.as_object_mut(), extra) {
            target.extend(more);
        }
        let created = admin.client(self).post("/api/agents", body).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "create agent failed: {}",
            created.body
        );
        self.login(&email, "password123").await
    }

    /// Logs in; panics unless it succeeds.
    pub async fn login(&self, email: &str, password: &str) -> Member {
        let response = self
            .anonymous()
            .post(
                "/api/auth/login",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "login failed: {}",
            response.body
        );
        Member::from_login(self, &response.body, email, password)
    }
}

/// A logged-in agent.
#[derive(Debug, Clone)]
pub struct Member {
    pub token: String,
    pub agent_id: String,
    pub organization_id: String,
    pub email: String,
    pub password: String,
}

impl Member {
    fn from_login(_app: &TestApp, body: &Value, email: &str, password: &str) -> Self {
        Self {
            token: body["token"].as_str().expect("token").to_owned(),
            agent_id: body["agent"]["id"].as_str().expect("agent id").to_owned(),
            organization_id: body["agent"]["organization_id"]
                .as_str()
                .expect("organization id")
                .to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
        }
    }

    /// A bearer client for this member.
    pub fn client(&self, app: &TestApp) -> Client {
        app.bearer(&self.token)
    }
}

#[derive(Debug, Clone)]
enum Credential {
    None,
    Bearer(String),
    ApiKey(String),
    Cookie(String),
}

/// An HTTP client bound to one app and one credential.
#[derive(Debug, Clone)]
pub struct Client {
    app_url: String,
    http: reqwest::Client,
    credential: Credential,
}

impl Client {
    /// A client of the platform at `base_url` (a process started apart from any [`TestApp`])
    /// with a bearer `token`.
    pub fn remote(base_url: &str, token: &str) -> Client {
        Client {
            app_url: base_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            credential: Credential::Bearer(token.to_owned()),
        }
    }
}

/// A response with its JSON body (or the raw text under `"_text"` when it is not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    /// The error code of an error body.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("<no error code>")
    }
}

impl Client {
    /// Sends a request with an optional JSON body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::read(request).await
    }

    /// Sends raw bytes with a content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        Self::read(
            self.request(method, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{}", self.app_url, path));
        match &self.credential {
            Credential::None => request,
            Credential::Bearer(token) => request.bearer_auth(token),
            Credential::ApiKey(key) => request.header("x-api-key", key),
            // As a browser client does: the cookie, and the header that proves a
            // cookie-authenticated write is not a cross-site form.
            Credential::Cookie(token) => request
                .header("cookie", format!("omnistream_token={token}"))
                .header("x-requested-with", "omnistream-tests"),
        }
    }

    async fn read(request: reqwest::RequestBuilder) -> Response {
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("response body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "_text": text }));
        Response {
            status,
            headers,
            body,
        }
    }

    /// `GET path` with the body as raw bytes (for binary downloads).
    pub async fn get_bytes(&self, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self
            .request(Method::GET, path)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body").to_vec();
        (status, headers, bytes)
    }

    /// Uploads a `multipart/form-data` body of `parts` to `path`.
    pub async fn post_form(&self, path: &str, parts: &[multipart::Part<'_>]) -> Response {
        let (content_type, body) = multipart::form(parts);
        self.send_raw(Method::POST, path, &content_type, body).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn delete_with(&self, path: &str, body: Value) -> Response {
        self.send(Method::DELETE, path, Some(body)).await
    }
}
