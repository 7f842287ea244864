//! OmniStream write side: command services, channel adapters and workers.

pub mod conversations;
pub mod outbound;
pub mod secrets;
pub mod whatsapp;
