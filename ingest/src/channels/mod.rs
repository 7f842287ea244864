//! One folder per inbound channel, each behind [`InboundChannel`]: the parser for what its
//! provider posts and the handler that turns a stored payload into contact and conversation
//! commands. What the Meta channels share (the webhook signature, reading a payload's `object`)
//! is in [`meta`]; the recording steps every handler uses (the account, the contact, a received
//! message) are in `inbox.rs`.
//!
//! A new channel is one folder with a type implementing [`InboundChannel`] and one line in
//! [`all`].

pub mod email;
mod inbox;
pub mod meta;
pub mod meta_messaging;
pub mod whatsapp;

use std::sync::OnceLock;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::InboundProcessor;

pub(crate) use inbox::{provider_context, Account, CustomerMessage};

/// Every inbound channel. The processor hands each payload to the one that accepts it.
pub fn all() -> &'static [&'static dyn InboundChannel] {
    &[
        &whatsapp::WhatsAppChannel,
        &meta_messaging::MetaMessagingChannel,
        &email::EmailChannel,
    ]
}

/// The channel that accepts `payload`, if any.
pub fn for_payload(payload: &StoredPayload) -> Option<&'static dyn InboundChannel> {
    all()
        .iter()
        .copied()
        .find(|channel| channel.accepts(payload))
}

/// The ordering key of payloads no channel accepts: they are only marked ignored, so their
/// order does not matter. No channel's key is empty.
pub const UNACCEPTED_KEY: &str = "";

/// The [ordering key](InboundChannel::ordering_key) of a payload as `provider`'s receiver got
/// it, stored with the payload so that every processor keeps each customer's payloads in order.
pub fn ordering_key_of(provider: &str, content_type: Option<&str>, body: &[u8]) -> String {
    // Email is keyed by its receiver alone: its body (up to tens of megabytes) is not copied.
    let body = if provider == email::PROVIDER {
        Vec::new()
    } else {
        body.to_vec()
    };
    let payload = StoredPayload::new(
        0,
        provider.to_owned(),
        content_type.map(str::to_owned),
        body,
    );
    match for_payload(&payload) {
        Some(channel) => channel.ordering_key(&payload),
        None => UNACCEPTED_KEY.to_owned(),
    }
}

/// How the processor handles one channel's payloads.
pub trait InboundChannel: Send + Sync {
    /// A short name, for logs.
    fn name(&self) -> &'static str;

    /// Whether `payload` is this channel's: by the receiver that stored it, or for Meta's JSON
    /// by its `object` (one Meta app may post every product to the same callback). At most one
    /// channel accepts a payload.
    fn accepts(&self, payload: &StoredPayload) -> bool;

    /// The customer `payload` is about: payloads with the same key are handled one after the
    /// other in arrival order, payloads with different keys alongside. Payloads without a
    /// customer share a key.
    fn ordering_key(&self, payload: &StoredPayload) -> String;

    /// Turns `payload` into contact and conversation commands through `processor`'s services.
    /// Every command must be idempotent: a payload is handled again after an error (and after
    /// a crash), so an error means "retry later" and a final refusal is a [`Disposition`].
    fn handle<'a>(
        &'a self,
        processor: &'a InboundProcessor,
        payload: StoredPayload,
    ) -> BoxFuture<'a, anyhow::Result<Disposition>>;
}

/// What became of one payload, recorded on its row of the raw inbound log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Its commands were issued (or had been, by an earlier attempt).
    Processed,
    /// Nothing in it could be used; the reason is kept with the payload.
    Ignored(String),
}

/// Why no channel accepts `payload`: its body is not JSON, or no channel handles its `object`.
pub fn unaccepted(payload: &StoredPayload) -> Disposition {
    let reason = match payload.json() {
        None => "not JSON",
        Some(_) => "unsupported object",
    };
    Disposition::Ignored(reason.into())
}

/// A payload of the raw inbound log (`inbound_webhooks`), claimed for processing.
#[derive(Debug)]
pub struct StoredPayload {
    /// Its row: commands it leads to name `inbound_webhook:{id}` as their causation.
    pub id: i64,
    /// The receiver that stored it: `meta` (WhatsApp), `messenger`, `instagram` or `email`.
    pub provider: String,
    /// The `Content-Type` it was posted with, where the receiver keeps it (email).
    pub content_type: Option<String>,
    /// The body as received.
    pub body: Vec<u8>,
    /// The body as JSON, decoded on first use (an email body is never decoded).
    json: OnceLock<Option<Value>>,
}

impl StoredPayload {
    /// A payload as stored by `provider`'s receiver.
    pub fn new(id: i64, provider: String, content_type: Option<String>, body: Vec<u8>) -> Self {
        Self {
            id,
            provider,
            content_type,
            body,
            json: OnceLock::new(),
        }
    }

    /// The body as JSON, `None` when it is not JSON; decoded once, however often asked.
    pub fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(&self.body).ok())
            .as_ref()
    }
}
