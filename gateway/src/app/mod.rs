//! The application: shared state, the router with its layers, and the background workers.

pub mod config;
pub mod db;
pub mod devstack;
pub mod health;
pub mod server;
pub mod startup;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use omnistream_commands::channels::email::reply_address::ReplyTokens;
use omnistream_commands::channels::meta::GraphClient;
use omnistream_commands::infra::media::{MediaLinks, MediaStore};
use omnistream_commands::infra::secrets::SecretBox;
use omnistream_commands::store::{ContactService, ConversationService};
use omnistream_ingest::{InboundProcessor, IngestState};

use crate::api::{
    activity_logs as activity, agents, api_keys, auth, chat_expiration_rules as chat_expiration,
    contacts, conversations, divisions, integrations, media, messages, notes, outgoing_webhooks,
    roles, stream,
};
use crate::app::config::{Config, Secret};
use crate::http::auth::jwt::TokenKeys;
use crate::http::error::ApiError;
use crate::http::openapi::ApiDoc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// PostgreSQL.
    pub pool: PgPool,
    /// Configuration read at start.
    pub config: Arc<Config>,
    /// JWT signing and verification.
    pub tokens: Arc<TokenKeys>,
    /// NATS (reconnects by itself; health reports its state).
    pub nats: async_nats::Client,
    /// Prometheus exposition.
    pub metrics: PrometheusHandle,
    /// Runs conversation commands.
    pub conversations: ConversationService,
    /// Runs contact commands.
    pub contacts: ContactService,
    /// Encrypts and masks integration secrets.
    pub secrets: SecretBox,
    /// Uploaded and inbound media (files under `<data_dir>/media`).
    pub media: MediaStore,
    /// Signs and checks public media links.
    pub media_links: MediaLinks,
    /// Meta's Graph API.
    pub graph: GraphClient,
    /// The Graph API of Instagram Login (`INSTAGRAM_BASE_URL`): sends, tokens, profiles.
    pub instagram: GraphClient,
    /// Where Instagram Login codes are exchanged (`INSTAGRAM_OAUTH_BASE_URL`).
    pub instagram_oauth: GraphClient,
    /// The share of the pool that unauthenticated endpoints (login, registration) may hold at
    /// once, so they can never starve the webhook receivers and signed-in users.
    pub public_db_share: Arc<Semaphore>,
    /// The one log reader behind every realtime stream of this process.
    pub stream_hub: crate::api::stream::hub::StreamHub,
}

impl AppState {
    /// Waits (up to 5 s) for the unauthenticated endpoints' share of the pool; 503 when it stays
    /// taken.
    pub async fn public_share(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let wait = Arc::clone(&self.public_db_share).acquire_owned();
        match tokio::time::timeout(Duration::from_secs(5), wait).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "service_unavailable",
                message: "too many sign-ins at once; retry in a moment".into(),
            }),
        }
    }
}

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

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
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
        let state = AppState {
            pool: pool.clone(),
            tokens: Arc::new(TokenKeys::new(
                settings.jwt_secret.expose().as_bytes(),
                settings.config.jwt_ttl,
            )),
            config: Arc::new(settings.config.clone()),
            nats,
            metrics: health::metrics_handle(),
            conversations: ConversationService::new(pool.clone()),
            contacts: ContactService::new(pool.clone()),
            secrets: secrets.clone(),
            media: MediaStore::new(pool.clone(), &settings.config.data_dir)
                .allowing_private_sources(settings.config.outgoing_webhooks_allow_private),
            media_links: MediaLinks::new(
                &settings.config.public_base_url,
                secrets.derive_key(MEDIA_LINK_KEY),
            ),
            graph: GraphClient::new(settings.config.meta_graph_base_url.clone()),
            instagram: GraphClient::new(settings.config.instagram_base_url.clone()),
            instagram_oauth: GraphClient::new(settings.config.instagram_oauth_base_url.clone()),
            stream_hub: Default::default(),
            public_db_share: Arc::new(Semaphore::new(
                (settings.config.database_max_connections as usize / 4).max(1),
            )),
        };
        let listener = tokio::net::TcpListener::bind(settings.config.bind_addr)
            .await
            .with_context(|| format!("binding {} (BIND_ADDR)", settings.config.bind_addr))?;
        let router = build_router(state.clone(), settings.roles);
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
        ReplyTokens::new(self.state.secrets.derive_key(REPLY_TOKEN_KEY))
    }

    /// Serves requests and runs the workers until the shutdown token is cancelled.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        if self.roles.worker {
            let deps = omnistream_commands::workers::Deps {
                pool: self.state.pool.clone(),
                conversations: self.state.conversations.clone(),
                secrets: self.state.secrets.clone(),
                media: self.state.media.clone(),
                media_links: self.state.media_links.clone(),
                graph: self.state.graph.clone(),
                instagram: self.state.instagram.clone(),
                reply_tokens: self.reply_tokens(),
                smtp_url: self
                    .state
                    .config
                    .smtp_url
                    .as_ref()
                    .map(|url| url.expose().to_owned()),
                allow_private: self.state.config.outgoing_webhooks_allow_private,
                retry_schedule: self.state.config.outgoing_webhooks_retry_schedule.clone(),
                nats: self.state.nats.clone(),
                nats_prefix: self.state.config.nats_prefix.clone(),
                stored_events: Arc::new(outgoing_webhooks::StoredEventLog(self.state.pool.clone())),
            };
            let inbound = InboundProcessor {
                pool: self.state.pool.clone(),
                conversations: self.state.conversations.clone(),
                contacts: self.state.contacts.clone(),
                media: self.state.media.clone(),
                reply_tokens: self.reply_tokens(),
            };
            let registered = omnistream_ingest::workers::all(inbound)
                .into_iter()
                .chain(omnistream_commands::workers::all(&deps))
                .chain(omnistream_projections::workers::all(
                    &self.state.pool,
                    &self.state.nats,
                    &self.state.config.nats_prefix,
                ));
            for worker in registered {
                tracing::debug!(worker = worker.name(), "starting");
                workers.push(tokio::spawn(worker.run(self.shutdown.clone())));
            }
        }
        if self.roles.api {
            workers.push(tokio::spawn(
                self.state
                    .stream_hub
                    .clone()
                    .run(self.state.pool.clone(), self.shutdown.clone()),
            ));
            let pool = self.state.pool.clone();
            let stop = self.shutdown.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    if let Err(error) = crate::http::auth::prune(&pool).await {
                        tracing::warn!(%error, "pruning sessions and login attempts failed");
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                    }
                }
            }));
        }
        let metrics = self.state.metrics.clone();
        let upkeep_stop = self.shutdown.clone();
        workers.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = upkeep_stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => metrics.run_upkeep(),
                }
            }
        }));
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

/// Connects to NATS at `url`, with the user and password the URL carries (async-nats reads
/// credentials only from its options, not from the URL).
async fn connect_nats(url: &str) -> anyhow::Result<async_nats::Client> {
    let address: async_nats::ServerAddr = url.parse().context("NATS_URL is not a NATS URL")?;
    let mut options = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2));
    if let (Some(user), Some(password)) = (address.username(), address.password()) {
        options = options.user_and_password(user.to_owned(), password.to_owned());
    }
    options
        .connect(address)
        .await
        .context("connecting to NATS (NATS_URL)")
}

/// The full router for `roles`: routes, OpenAPI, docs, fallbacks and layers.
pub fn build_router(state: AppState, roles: Roles) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(health::router());
    if roles.api {
        api = api
            .merge(auth::router())
            .merge(agents::router())
            .merge(divisions::router())
            .merge(roles::router())
            .merge(api_keys::router())
            .merge(activity::router())
            .merge(integrations::router())
            .merge(contacts::router())
            .merge(conversations::router())
            .merge(messages::router())
            .merge(media::router())
            .merge(notes::router())
            .merge(chat_expiration::router())
            .merge(stream::router())
            .merge(outgoing_webhooks::router());
    }
    let (mut router, openapi) = api.split_for_parts();
    if roles.ingest {
        let secrets: Vec<Vec<u8>> = [
            &state.config.meta_app_secret,
            &state.config.instagram_app_secret,
        ]
        .into_iter()
        .flatten()
        .map(|secret| secret.expose().as_bytes().to_vec())
        .collect();
        router = router.merge(omnistream_ingest::router(IngestState {
            pool: state.pool.clone(),
            storing: Arc::new(tokio::sync::Semaphore::new(
                omnistream_ingest::receiver::MAX_STORING,
            )),
            app_secrets: Arc::new(secrets),
            verify_token: state
                .config
                .meta_verify_token
                .as_ref()
                .map(|t| t.expose().to_owned()),
            email_secret: state
                .config
                .email_webhook_secret
                .as_ref()
                .map(|t| t.expose().to_owned()),
            mailgun_signing_key: state
                .config
                .mailgun_webhook_signing_key
                .as_ref()
                .map(|t| t.expose().to_owned()),
        }));
    }
    if roles.api {
        router = router.merge(SwaggerUi::new("/docs").url("/api/openapi.json", openapi));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::app::server::request_deadline,
        ))
        .layer(axum::middleware::from_fn(crate::http::auth::csrf::guard))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::peer::record_client_ip,
        ))
        .layer(axum::middleware::from_fn(health::track_requests))
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> Response {
    ApiError::Status {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: "this method is not allowed on this path".into(),
    }
    .into_response()
}
