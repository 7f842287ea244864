//! Meta webhooks (WhatsApp Cloud API, Messenger and Instagram): payload signature checks and
//! parsing of the webhook bodies into domain values.

mod messaging;
mod signature;
mod whatsapp;

pub use messaging::{
    parse_messaging, MessagingEvent, MessagingKind, INSTAGRAM_OBJECT, MESSENGER_OBJECT,
};
pub use signature::verify_signature;
pub use whatsapp::{
    parse_whatsapp, WhatsAppBatch, WhatsAppChange, WhatsAppInbound, WhatsAppStatus, WHATSAPP_OBJECT,
};
