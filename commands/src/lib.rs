//! OmniStream write side: command services, channel adapters and workers.

pub mod channels;
pub mod email;
pub mod outbound;
pub mod pacing;
pub mod secrets;
pub mod service;
pub mod webhook_dispatch;
pub mod webhooks;
pub mod whatsapp;
