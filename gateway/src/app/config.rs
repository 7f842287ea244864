//! Configuration: one typed struct read once from the environment at start.
//!
//! The variable names are part of the contract (ARCHITECTURE.md, "Configuration"); README.md
//! lists each with its default.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::app::server::ServerLimits;
use crate::http::peer::TrustedProxies;

/// A secret value that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything the platform reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DATABASE_URL`; unset: the embedded dev stack decides.
    pub database_url: Option<String>,
    /// `NATS_URL`; unset: the embedded dev stack decides.
    pub nats_url: Option<String>,
    /// `BIND_ADDR`, default `127.0.0.1:8080`.
    pub bind_addr: SocketAddr,
    /// `PUBLIC_BASE_URL`, default `http://<BIND_ADDR>`; an `https` URL makes cookies `Secure`.
    pub public_base_url: String,
    /// `JWT_SECRET`; unset: a random secret kept in the data directory (dev only).
    pub jwt_secret: Option<Secret>,
    /// `NATS_PREFIX`, default `omnistream`.
    pub nats_prefix: String,
    /// `NATS_STREAM_REPLICAS`, default 1: copies of the events stream a NATS cluster keeps
    /// (3 survives losing one node of three).
    pub nats_stream_replicas: usize,
    /// `METRICS_TOKEN`; unset: `/metrics` is open.
    pub metrics_token: Option<Secret>,
    /// `OMNISTREAM_DATA_DIR`, default `./.data`: the dev stack and local media live here.
    pub data_dir: PathBuf,
    /// `JWT_TTL_SECONDS`, default 24 h.
    pub jwt_ttl: Duration,
    /// `DATABASE_MAX_CONNECTIONS`, default 20: the pool size of this process.
    pub database_max_connections: u32,
    /// `ENCRYPTION_KEY`; unset: a random key kept in the data directory (dev only).
    pub encryption_key: Option<Secret>,
    /// `META_GRAPH_BASE_URL`, default Meta's Graph API.
    pub meta_graph_base_url: String,
    /// `META_APP_ID` (embedded signup, Facebook Login).
    pub meta_app_id: Option<String>,
    /// `META_APP_SECRET`: checks `X-Hub-Signature-256`, exchanges OAuth codes.
    pub meta_app_secret: Option<Secret>,
    /// `META_VERIFY_TOKEN`: the platform-wide webhook verify token.
    pub meta_verify_token: Option<Secret>,
    /// `META_CONFIG_ID` (embedded signup configuration).
    pub meta_config_id: Option<String>,
    /// `INSTAGRAM_APP_SECRET`: also accepted for `X-Hub-Signature-256`; exchanges Instagram
    /// Login codes.
    pub instagram_app_secret: Option<Secret>,
    /// `INSTAGRAM_APP_ID`: the Instagram Login app (`GET /api/integrations/instagram/auth-config`).
    pub instagram_app_id: Option<String>,
    /// `INSTAGRAM_BASE_URL`, default `https://graph.instagram.com/v21.0`: Instagram Login sends,
    /// long-lived tokens and profiles.
    pub instagram_base_url: String,
    /// `INSTAGRAM_OAUTH_BASE_URL`, default `https://api.instagram.com`: where Instagram Login
    /// codes are exchanged for short-lived tokens.
    pub instagram_oauth_base_url: String,
    /// `MESSENGER_CONFIG_ID`: the Facebook Login for Business configuration of the Messenger
    /// connect flow (falls back to `META_CONFIG_ID`).
    pub messenger_config_id: Option<String>,
    /// `EMAIL_WEBHOOK_SECRET`: the `X-Webhook-Secret` of `POST /webhooks/email`; unset, the
    /// receiver accepts nothing.
    pub email_webhook_secret: Option<Secret>,
    /// `MAILGUN_WEBHOOK_SIGNING_KEY`: Mailgun route posts whose `signature` verifies with it are
    /// accepted without `X-Webhook-Secret`.
    pub mailgun_webhook_signing_key: Option<Secret>,
    /// `SMTP_URL`: the SMTP server for email accounts that name none of their own
    /// (`smtp://user:pass@host:587`, `smtps://…`, `smtp://host:25?tls=none`); it may hold a
    /// password, so it is kept as a secret.
    pub smtp_url: Option<Secret>,
    /// `OUTGOING_WEBHOOKS_ALLOW_PRIVATE`, default false: allow private addresses and plain http.
    pub outgoing_webhooks_allow_private: bool,
    /// `OUTGOING_WEBHOOKS_RETRY_SCHEDULE`, default `5s,5m,30m,2h,5h,10h,10h`.
    pub outgoing_webhooks_retry_schedule: Vec<Duration>,
    /// `TRUSTED_PROXIES`: addresses or CIDR blocks whose `X-Forwarded-For` is believed; default
    /// none (the TCP peer is the client).
    pub trusted_proxies: TrustedProxies,
    /// Connection caps and the header-read timeout (`HTTP_*`, see [`ServerLimits`]).
    pub server_limits: ServerLimits,
    /// `HTTP_REQUEST_TIMEOUT_SECONDS`, default 30: the most a request may take until its response
    /// starts (the realtime stream is exempt; uploads have their own).
    pub request_timeout: Duration,
    /// `HTTP_UPLOAD_TIMEOUT_SECONDS`, default 300: the same for media uploads and inbound email.
    pub upload_timeout: Duration,
    /// `REGISTRATIONS_PER_HOUR_PER_ADDRESS`, default 10: sign-ups one client address may make.
    pub registrations_per_hour: u32,
    /// `STREAMS_PER_AGENT`, default 8: open `/api/stream` connections of one agent.
    pub streams_per_agent: usize,
    /// `SESSION_MAX_LIFETIME_SECONDS`, default 30 days: a session's absolute lifetime, however
    /// often its token is refreshed.
    pub session_max_lifetime: Duration,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (tests pass their own values).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        // A base URL without its trailing slash, `default` when unset.
        let base_url = |name: &str, default: &str| {
            get(name)
                .as_deref()
                .unwrap_or(default)
                .trim_end_matches('/')
                .to_owned()
        };
        let bind_addr: SocketAddr = get("BIND_ADDR")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("BIND_ADDR must be host:port, e.g. 127.0.0.1:8080")?;
        let public_base_url = base_url("PUBLIC_BASE_URL", &format!("http://{bind_addr}"));
        let jwt_ttl = match get("JWT_TTL_SECONDS") {
            Some(raw) => Duration::from_secs(
                raw.parse()
                    .context("JWT_TTL_SECONDS must be a number of seconds")?,
            ),
            None => Duration::from_secs(24 * 3600),
        };
        let database_max_connections = match get("DATABASE_MAX_CONNECTIONS") {
            Some(raw) => raw
                .parse()
                .context("DATABASE_MAX_CONNECTIONS must be a positive number")?,
            None => 20,
        };
        let outgoing_webhooks_retry_schedule = match get("OUTGOING_WEBHOOKS_RETRY_SCHEDULE") {
            Some(raw) => omnistream_commands::webhooks::wire::parse_schedule(&raw)
                .filter(|s| !s.is_empty())
                .context("OUTGOING_WEBHOOKS_RETRY_SCHEDULE must look like `5s,5m,30m,2h` (units ms, s, m, h)")?,
            None => omnistream_commands::webhooks::wire::default_schedule(),
        };
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            get(name).map_or(Ok(default), |raw| {
                raw.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("{name} must be a positive whole number"))
            })
        };
        let defaults = ServerLimits::default();
        let server_limits = ServerLimits {
            header_read_timeout: Duration::from_secs(number(
                "HTTP_HEADER_READ_TIMEOUT_SECONDS",
                defaults.header_read_timeout.as_secs(),
            )?),
            max_connections: number("HTTP_MAX_CONNECTIONS", defaults.max_connections as u64)?
                as usize,
            max_connections_per_peer: number(
                "HTTP_MAX_CONNECTIONS_PER_PEER",
                defaults.max_connections_per_peer as u64,
            )? as usize,
        };
        Ok(Self {
            trusted_proxies: TrustedProxies::parse(&get("TRUSTED_PROXIES").unwrap_or_default())?,
            server_limits,
            request_timeout: Duration::from_secs(number("HTTP_REQUEST_TIMEOUT_SECONDS", 30)?),
            upload_timeout: Duration::from_secs(number("HTTP_UPLOAD_TIMEOUT_SECONDS", 300)?),
            registrations_per_hour: number("REGISTRATIONS_PER_HOUR_PER_ADDRESS", 10)? as u32,
            streams_per_agent: number("STREAMS_PER_AGENT", 8)? as usize,
            session_max_lifetime: Duration::from_secs(number(
                "SESSION_MAX_LIFETIME_SECONDS",
                30 * 24 * 3600,
            )?),
            outgoing_webhooks_allow_private: get("OUTGOING_WEBHOOKS_ALLOW_PRIVATE")
                .is_some_and(|v| matches!(v.to_lowercase().as_str(), "1" | "true" | "yes")),
            outgoing_webhooks_retry_schedule,
            encryption_key: get("ENCRYPTION_KEY").map(Secret::new),
            meta_graph_base_url: base_url(
                "META_GRAPH_BASE_URL",
                "https://graph.facebook.com/v21.0",
            ),
            meta_app_id: get("META_APP_ID"),
            meta_app_secret: get("META_APP_SECRET").map(Secret::new),
            meta_verify_token: get("META_VERIFY_TOKEN").map(Secret::new),
            meta_config_id: get("META_CONFIG_ID"),
            instagram_app_secret: get("INSTAGRAM_APP_SECRET").map(Secret::new),
            instagram_app_id: get("INSTAGRAM_APP_ID"),
            instagram_base_url: base_url("INSTAGRAM_BASE_URL", "https://graph.instagram.com/v21.0"),
            instagram_oauth_base_url: base_url(
                "INSTAGRAM_OAUTH_BASE_URL",
                "https://api.instagram.com",
            ),
            messenger_config_id: get("MESSENGER_CONFIG_ID"),
            email_webhook_secret: get("EMAIL_WEBHOOK_SECRET").map(Secret::new),
            mailgun_webhook_signing_key: get("MAILGUN_WEBHOOK_SIGNING_KEY").map(Secret::new),
            smtp_url: get("SMTP_URL").map(Secret::new),
            database_max_connections,
            database_url: get("DATABASE_URL"),
            nats_url: get("NATS_URL"),
            bind_addr,
            public_base_url,
            jwt_secret: get("JWT_SECRET").map(Secret::new),
            nats_prefix: get("NATS_PREFIX").unwrap_or_else(|| "omnistream".into()),
            nats_stream_replicas: match number("NATS_STREAM_REPLICAS", 1)? {
                replicas @ 1..=5 => replicas as usize,
                _ => anyhow::bail!("NATS_STREAM_REPLICAS must be between 1 and 5"),
            },
            metrics_token: get("METRICS_TOKEN").map(Secret::new),
            data_dir: get("OMNISTREAM_DATA_DIR")
                .map_or_else(|| PathBuf::from(".data"), PathBuf::from),
            jwt_ttl,
        })
    }

    /// Whether the API is served over HTTPS, so cookies carry `Secure`.
    pub fn cookies_secure(&self) -> bool {
        self.public_base_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::from_lookup(|_| None).unwrap();
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_base_url, "http://127.0.0.1:8080");
        assert_eq!(config.nats_prefix, "omnistream");
        assert_eq!(config.nats_stream_replicas, 1);
        assert!(!config.cookies_secure());
        assert!(config.database_url.is_none());
    }

    #[test]
    fn stream_replicas_are_bounded_by_what_jetstream_allows() {
        let replicas = |value: &'static str| {
            Config::from_lookup(|name| (name == "NATS_STREAM_REPLICAS").then(|| value.to_owned()))
                .map(|c| c.nats_stream_replicas)
        };
        assert_eq!(replicas("3").unwrap(), 3);
        assert!(replicas("6").is_err());
        assert!(replicas("0").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let config =
            Config::from_lookup(|name| (name == "JWT_SECRET").then(|| "hunter2".to_owned()))
                .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn https_base_url_makes_cookies_secure() {
        let config = Config::from_lookup(|name| {
            (name == "PUBLIC_BASE_URL").then(|| "https://chat.example.com/".to_owned())
        })
        .unwrap();
        assert!(config.cookies_secure());
        assert_eq!(config.public_base_url, "https://chat.example.com");
    }
}
