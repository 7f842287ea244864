//! Pure conversation rules that need facts from outside the aggregate (an agent's divisions and
//! permissions, a tenant's chat-expiration rule) or that several places share (tags, expiry).
//! The application services in `commands` look the facts up and call these functions; HTTP
//! handlers never decide.

pub mod expiry;
pub mod notes;
pub mod tags;
pub mod transfer;
pub mod visibility;
pub mod window;
