//! OmniStream domain: identifiers, value types, the permission catalogue and pure policies.
//!
//! Nothing in this crate performs I/O; it is shared by the write side, the read side and the
//! HTTP gateway so that every layer speaks the same validated types.

pub mod catalogue;
pub mod contact;
pub mod conversation;
pub mod kernel;

pub use kernel::channel::Channel;
pub use kernel::email::{EmailAddress, InvalidEmail};
pub use kernel::ids::{AgentId, ApiKeyId, DivisionId, RoleId, SessionId, TenantId};
pub use kernel::message::{
    InboundContent, InboundMedia, MessageStatus, MessageTag, MessageType, ProviderStatus,
    ReceiptBound,
};
pub use kernel::permissions::{AgentRole, Permission};
pub use kernel::phone::{InvalidPhone, PhoneNumber};
pub use kernel::stream::{StreamId, StreamIdError};
