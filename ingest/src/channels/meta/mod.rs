//! What the Meta channels (WhatsApp Cloud API, Messenger, Instagram) share: the
//! `X-Hub-Signature-256` check their receivers run before a payload is stored, and the
//! `object` that tells their payloads apart.

mod signature;

pub use signature::verify_signature;

use crate::channels::{email, StoredPayload};

/// The `object` of a payload a Meta receiver stored: which Meta product it is about. Every
/// receiver but email's stores Meta's JSON, and a Meta app may post any product's webhooks to
/// any of them (one callback URL for all), so the object decides, not the receiver. `None` for
/// an email and for a body that is not JSON.
pub fn object(payload: &StoredPayload) -> Option<&str> {
    if payload.provider == email::PROVIDER {
        return None;
    }
    payload.json()?.get("object")?.as_str()
}
