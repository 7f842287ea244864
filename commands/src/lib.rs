//! OmniStream write side: command services, channel adapters and workers.

pub mod audit;
pub mod channels;
pub mod email;
mod graph_errors;
pub mod instagram;
pub mod media;
pub mod meta_login;
pub mod outbound;
pub mod pacing;
pub mod reply_address;
pub mod secrets;
pub mod service;
pub mod token_refresh;
pub mod webhook_dispatch;
pub mod webhooks;
pub mod whatsapp;
