//! WhatsApp Cloud API webhooks (`object = "whatsapp_business_account"`).

mod parse;

pub use parse::{
    parse_whatsapp, WhatsAppBatch, WhatsAppChange, WhatsAppInbound, WhatsAppStatus, WHATSAPP_OBJECT,
};
