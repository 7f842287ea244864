//! Meta webhooks (WhatsApp Cloud API, later Messenger and Instagram): payload signature
//! checks and parsing of the webhook bodies into domain values.

mod signature;
mod whatsapp;

pub use signature::verify_signature;
pub use whatsapp::{
    parse_whatsapp, WhatsAppBatch, WhatsAppChange, WhatsAppInbound, WhatsAppStatus, WHATSAPP_OBJECT,
};
