//! The registry of this crate's background workers: the binary starts what its role asks for by
//! looping over [`all`] (and the projections' and ingest's registries), instead of wiring each
//! worker by hand.
//!
//! A new worker is one type implementing [`Worker`] and one line in [`all`].

use std::sync::Arc;
use std::time::Duration;

#[doc(hidden)]
pub use async_trait::async_trait;
use omnistream_domain::Channel;
use sqlx::PgPool;
pub use tokio_util::sync::CancellationToken;

use crate::channels::email::reply_address::ReplyTokens;
use crate::channels::email::smtp::SmtpMailer;
use crate::channels::instagram::token_refresh::InstagramTokenRefresher;
use crate::channels::meta::GraphClient;
use crate::channels::outbound::OutboundSender;
use crate::channels::{ChannelAdapter, EmailAdapter, PageAdapter, WhatsAppAdapter};
use crate::conversation::expire::ExpiryWorker;
use crate::conversation::ConversationDeps;
use crate::infra::media::{MediaLinks, MediaStore};
use crate::infra::secrets::SecretBox;
use crate::infra::wakeup::Wakeups;
use crate::store::ConversationService;
use crate::webhooks::dispatcher::Dispatcher;
use crate::webhooks::fanout::StoredEvents;
use crate::webhooks::sender::WebhookSender;

/// A long-running background task of the worker role.
#[async_trait]
pub trait Worker: Send {
    /// A short name, for logs.
    fn name(&self) -> &'static str;

    /// Runs until `stop` is cancelled.
    async fn run(self: Box<Self>, stop: CancellationToken);
}

/// Implements [`Worker`] for a type with an inherent `async fn run(self, CancellationToken)`.
#[macro_export]
macro_rules! worker {
    ($type:ty, $name:literal) => {
        #[$crate::workers::async_trait]
        impl $crate::workers::Worker for $type {
            fn name(&self) -> &'static str {
                $name
            }

            async fn run(self: Box<Self>, stop: $crate::workers::CancellationToken) {
                <$type>::run(*self, stop).await
            }
        }
    };
}

worker!(OutboundSender, "outbound sender");
worker!(InstagramTokenRefresher, "instagram token refresher");
worker!(ExpiryWorker, "conversation expiry");
worker!(Dispatcher, "webhook dispatcher");
worker!(WebhookSender, "webhook sender");

/// What this crate's workers are built from.
#[derive(Clone)]
pub struct Deps {
    pub pool: PgPool,
    pub conversations: ConversationService,
    pub secrets: SecretBox,
    pub media: MediaStore,
    pub media_links: MediaLinks,
    /// `META_GRAPH_BASE_URL`: WhatsApp and Messenger.
    pub graph: GraphClient,
    /// `INSTAGRAM_BASE_URL`: Instagram Login.
    pub instagram: GraphClient,
    /// Signs email reply addresses.
    pub reply_tokens: ReplyTokens,
    /// `SMTP_URL`, for email accounts that name no server of their own.
    pub smtp_url: Option<String>,
    /// `OUTGOING_WEBHOOKS_ALLOW_PRIVATE`.
    pub allow_private: bool,
    /// `OUTGOING_WEBHOOKS_RETRY_SCHEDULE`.
    pub retry_schedule: Vec<Duration>,
    pub nats: async_nats::Client,
    /// `NATS_PREFIX`.
    pub nats_prefix: String,
    /// Where the webhook dispatcher reads each relayed event back from (the read side's log).
    pub stored_events: Arc<dyn StoredEvents>,
    /// Wakes the workers when their queues get work.
    pub wakeups: Wakeups,
}

/// Every worker of this crate.
pub fn all(deps: &Deps) -> Vec<Box<dyn Worker>> {
    let adapters: Vec<Arc<dyn ChannelAdapter>> = vec![
        Arc::new(WhatsAppAdapter {
            graph: deps.graph.clone(),
            pacer: Default::default(),
        }),
        Arc::new(PageAdapter {
            channel: Channel::Messenger,
            graph: deps.graph.clone(),
        }),
        Arc::new(PageAdapter {
            channel: Channel::Instagram,
            graph: deps.instagram.clone(),
        }),
        Arc::new(EmailAdapter {
            mailer: SmtpMailer::new(deps.smtp_url.clone(), deps.allow_private),
            reply_tokens: Some(deps.reply_tokens.clone()),
        }),
    ];
    vec![
        Box::new(OutboundSender {
            pool: deps.pool.clone(),
            conversations: deps.conversations.clone(),
            secrets: deps.secrets.clone(),
            adapters: Arc::new(adapters),
            media: deps.media.clone(),
            media_links: deps.media_links.clone(),
            wakeups: deps.wakeups.clone(),
        }),
        Box::new(InstagramTokenRefresher {
            pool: deps.pool.clone(),
            secrets: deps.secrets.clone(),
            instagram: deps.instagram.clone(),
        }),
        Box::new(ExpiryWorker {
            deps: ConversationDeps {
                pool: deps.pool.clone(),
                conversations: deps.conversations.clone(),
                media: deps.media.clone(),
            },
        }),
        Box::new(Dispatcher {
            pool: deps.pool.clone(),
            nats: deps.nats.clone(),
            prefix: deps.nats_prefix.clone(),
            events: Arc::clone(&deps.stored_events),
        }),
        Box::new(WebhookSender {
            pool: deps.pool.clone(),
            secrets: deps.secrets.clone(),
            allow_private: deps.allow_private,
            schedule: Arc::new(deps.retry_schedule.clone()),
            in_flight: Arc::default(),
            wakeups: deps.wakeups.clone(),
        }),
    ]
}
