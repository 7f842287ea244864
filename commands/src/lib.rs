//! OmniStream write side: command services, channel adapters and workers.

pub mod audit;
pub mod channels;
pub mod contact;
pub mod conversation;
pub mod media;
pub mod outbound;
pub mod pacing;
pub mod secrets;
pub mod service;
pub mod token_refresh;
pub mod webhooks;
pub mod workers;
