//! WhatsApp Cloud API webhooks (`object = "whatsapp_business_account"`).

mod content;
#[cfg(test)]
mod fixtures;
mod json;
mod parse;
mod payload;
mod status;

pub use parse::parse_whatsapp;
pub use payload::{WhatsAppBatch, WhatsAppChange, WhatsAppInbound, WhatsAppStatus};

/// The `object` of WhatsApp Business Account webhooks.
pub const WHATSAPP_OBJECT: &str = "whatsapp_business_account";
