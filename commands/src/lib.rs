//! OmniStream write side: command services, channel adapters and workers.

pub mod audit;
pub mod channels;
pub mod contact;
pub mod conversation;
pub mod infra;
pub mod store;
pub mod webhooks;
pub mod workers;
