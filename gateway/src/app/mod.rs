//! The process: [`Application`] builds the [`state`], the [`router`] and, by [`Roles`], the
//! [`workers`], then serves until shut down.

pub mod config;
pub mod db;
pub mod devstack;
pub mod health;
pub mod router;
pub mod server;
pub mod startup;
pub mod state;
pub mod workers;

pub use state::{AppState, AuthKeys, ChannelClients, Telemetry};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use omnistream_commands::channels::email::reply_address::ReplyTokens;
use omnistream_commands::channels::meta::GraphClient;
use omnistream_commands::conversation::ConversationDeps;
use omnistream_commands::infra::media::{MediaLinks, MediaStore};
use omnistream_commands::infra::secrets::SecretBox;
use omnistream_commands::infra::wakeup::Announcer;
use omnistream_commands::store::{ContactService, ConversationService};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::config::{Config, Secret};
use crate::http::auth::jwt::TokenKeys;

/// Which parts of the platform this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The REST API under `/api`, and the docs.
    pub api: bool,
    /// Inbound webhooks under `/webhooks`.
    pub ingest: bool,
    /// Projectors and other background workers.
    pub worker: bool,
}

impl Roles {
    /// Everything in one process (`omnistream serve`).
    pub const ALL: Roles = Roles {
        api: true,
        ingest: true,
        worker: true,
    };
    /// The REST API alone (`omnistream gateway`).
    pub const GATEWAY: Roles = Roles {
        api: true,
        ingest: false,
        worker: false,
    };
    /// The webhook receivers alone (`omnistream ingest`).
    pub const INGEST: Roles = Roles {
        api: false,
        ingest: true,
        worker: false,
    };
    /// The projectors and workers alone (`omnistream worker`).
    pub const WORKER: Roles = Roles {
        api: false,
        ingest: false,
        worker: true,
    };
}

/// Resolved connection settings for one process.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub database_url: String,
    pub nats_url: String,
    pub jwt_secret: Secret,
    pub encryption_key: Secret,
    pub roles: Roles,
}

/// A built application, bound to its port, ready to run.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    roles: Roles,
    shutdown: CancellationToken,
}

/// Purposes of the keys derived from `ENCRYPTION_KEY`.
const MEDIA_LINK_KEY: &str = "media-link";
const REPLY_TOKEN_KEY: &str = "email-reply-token";

impl Application {
    /// Connects to PostgreSQL (applying migrations) and NATS, and binds `config.bind_addr`
    /// (port 0 picks a free port, as tests do).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = crate::app::db::connect(
            &settings.database_url,
            settings.config.database_max_connections,
            Duration::from_secs(30),
        )
        .await?;
        crate::app::db::migrate(&pool).await?;
        let nats = connect_nats(&settings.nats_url).await?;
        // The connection is made in the background so the API can start while NATS is down;
        // give a reachable server a moment so health is accurate from the first request.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while nats.connection_state() != async_nats::connection::State::Connected
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secrets = SecretBox::new(settings.encryption_key.expose());
        let announcer = Announcer::start(pool.clone());
        let state = AppState {
            pool: pool.clone(),
            config: Arc::new(settings.config.clone()),
            auth: AuthKeys {
                tokens: Arc::new(TokenKeys::new(
                    settings.jwt_secret.expose().as_bytes(),
                    settings.config.jwt_ttl,
                )),
                public_db_share: Arc::new(Semaphore::new(
                    (settings.config.database_max_connections as usize / 4).max(1),
                )),
            },
            conversation: ConversationDeps {
                pool: pool.clone(),
                conversations: ConversationService::new(pool.clone()).announcing(announcer.clone()),
                media: MediaStore::new(pool.clone(), &settings.config.data_dir)
                    .allowing_private_sources(settings.config.outgoing_webhooks_allow_private),
            },
            contacts: ContactService::new(pool.clone()).announcing(announcer.clone()),
            channels: ChannelClients {
                graph: GraphClient::new(settings.config.meta_graph_base_url.clone()),
                instagram: GraphClient::new(settings.config.instagram_base_url.clone()),
                instagram_oauth: GraphClient::new(settings.config.instagram_oauth_base_url.clone()),
                secrets: secrets.clone(),
            },
            media_links: MediaLinks::new(
                &settings.config.public_base_url,
                secrets.derive_key(MEDIA_LINK_KEY),
            ),
            telemetry: Telemetry {
                nats,
                metrics: health::metrics_handle(),
            },
            stream_hub: Default::default(),
        };
        let listener = tokio::net::TcpListener::bind(settings.config.bind_addr)
            .await
            .with_context(|| format!("binding {} (BIND_ADDR)", settings.config.bind_addr))?;
        let router = router::build(state.clone(), settings.roles);
        Ok(Self {
            listener,
            router,
            state,
            roles: settings.roles,
            shutdown: CancellationToken::new(),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// The shared state (tests use its pool).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Cancelling this token stops the server and its workers gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The signer of email reply-address tokens.
    fn reply_tokens(&self) -> ReplyTokens {
        ReplyTokens::new(self.state.channels.secrets.derive_key(REPLY_TOKEN_KEY))
    }

    /// Serves requests and runs the workers until the shutdown token is cancelled.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let workers =
            workers::start(&self.state, self.roles, self.reply_tokens(), &self.shutdown).await;
        let limits = self
            .state
            .config
            .server_limits
            .clone()
            .fitted_to(crate::app::server::raise_file_limit());
        crate::app::server::serve(
            self.listener,
            self.router,
            limits,
            self.state.config.trusted_proxies.clone(),
            self.shutdown.clone(),
        )
        .await?;
        self.shutdown.cancel();
        for worker in workers {
            let _ = worker.await;
        }
        Ok(())
    }
}

/// Connects to NATS at `urls` (one URL, or a cluster's as a comma-separated list), with the
/// user and password the first of them carries (async-nats reads credentials only from its
/// options, not from the URL).
async fn connect_nats(urls: &str) -> anyhow::Result<async_nats::Client> {
    let addresses = urls
        .split(',')
        .map(|url| url.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("NATS_URL is not a NATS URL (or a comma-separated list of them)")?;
    let mut options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2));
    let credentials = addresses
        .iter()
        .find_map(|address| Some((address.username()?, address.password()?)));
    if let Some((user, password)) = credentials {
        options = options.user_and_password(user.to_owned(), password.to_owned());
    }
    options
        .connect(addresses)
        .await
        .context("connecting to NATS (NATS_URL)")
}
