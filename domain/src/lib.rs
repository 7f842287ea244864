//! OmniStream domain: identifiers, value types, the permission catalogue and pure policies.
//!
//! Nothing in this crate performs I/O; it is shared by the write side, the read side and the
//! HTTP gateway so that every layer speaks the same validated types.

pub mod catalogue;
pub mod contact;
pub mod conversation;
pub mod email;
pub mod ids;
pub mod kernel;
pub mod message;
pub mod permissions;
pub mod stream;

pub use email::{EmailAddress, InvalidEmail};
pub use ids::{AgentId, ApiKeyId, DivisionId, RoleId, SessionId, TenantId};
pub use message::{
    Channel, InboundContent, InboundMedia, MessageStatus, MessageTag, MessageType, ProviderStatus,
    ReceiptBound,
};
pub use permissions::{AgentRole, Permission};
pub use stream::{StreamId, StreamIdError};
