//! The shared state, as sub-states: a handler asks for what it uses (`State<PgPool>`,
//! `State<ConversationDeps>`, `State<ChannelClients>`, …) and axum hands it that part of
//! [`AppState`] through `FromRef`. Extractors that authenticate (`Authorized`, `Caller`) take the
//! whole state.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::http::StatusCode;
use metrics_exporter_prometheus::PrometheusHandle;
use omnistream_commands::channels::meta::GraphClient;
use omnistream_commands::conversation::ConversationDeps;
use omnistream_commands::infra::media::{MediaLinks, MediaStore};
use omnistream_commands::infra::secrets::SecretBox;
use omnistream_commands::store::ContactService;
use sqlx::PgPool;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::stream::hub::StreamHub;
use crate::app::config::Config;
use crate::http::auth::jwt::TokenKeys;
use crate::http::error::ApiError;

/// Everything the handlers of one process share.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// PostgreSQL.
    pub pool: PgPool,
    /// Configuration read at start.
    pub config: Arc<Config>,
    /// Sessions: token keys and the unauthenticated endpoints' share of the pool.
    pub auth: AuthKeys,
    /// What the conversation services need (the pool, the conversation commands, media).
    pub conversation: ConversationDeps,
    /// Runs contact commands.
    pub contacts: ContactService,
    /// The providers' APIs and the secrets that reach them.
    pub channels: ChannelClients,
    /// Signs and checks public media links.
    pub media_links: MediaLinks,
    /// NATS and the metrics registry, for health and metrics.
    pub telemetry: Telemetry,
    /// The one log reader behind every realtime stream of this process.
    pub stream_hub: StreamHub,
}

/// JWT keys and the share of the pool that unauthenticated endpoints (login, registration) may
/// hold at once, so they can never starve the webhook receivers and signed-in users.
#[derive(Clone)]
pub struct AuthKeys {
    /// JWT signing and verification.
    pub tokens: Arc<TokenKeys>,
    /// Permits for unauthenticated database work.
    pub public_db_share: Arc<Semaphore>,
}

impl AuthKeys {
    /// Waits (up to 5 s) for the unauthenticated endpoints' share of the pool; 503 when it
    /// stays taken.
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

/// The providers' APIs, and the box that seals the credentials stored for them.
#[derive(Clone)]
pub struct ChannelClients {
    /// Meta's Graph API.
    pub graph: GraphClient,
    /// The Graph API of Instagram Login (`INSTAGRAM_BASE_URL`): sends, tokens, profiles.
    pub instagram: GraphClient,
    /// Where Instagram Login codes are exchanged (`INSTAGRAM_OAUTH_BASE_URL`).
    pub instagram_oauth: GraphClient,
    /// Encrypts and masks integration secrets.
    pub secrets: SecretBox,
}

/// What health and metrics report on.
#[derive(Clone)]
pub struct Telemetry {
    /// NATS (reconnects by itself; health reports its state).
    pub nats: async_nats::Client,
    /// Prometheus exposition.
    pub metrics: PrometheusHandle,
}

impl FromRef<AppState> for MediaStore {
    fn from_ref(state: &AppState) -> Self {
        state.conversation.media.clone()
    }
}

impl FromRef<AppState> for SecretBox {
    fn from_ref(state: &AppState) -> Self {
        state.channels.secrets.clone()
    }
}
