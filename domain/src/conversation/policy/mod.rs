//! Pure conversation rules that need facts from outside the aggregate (an agent's divisions and
//! permissions, a tenant's chat-expiration rule). The application services in `commands` look
//! those facts up and call these functions; HTTP handlers never decide.

pub mod visibility;
pub mod window;
