//! Strongly typed identifiers, so an agent id can never be passed where a tenant id is expected.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random (v4) id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(
    /// A tenant: one customer organisation.
    TenantId
);
uuid_id!(
    /// A tenant's agent (a user of the inbox).
    AgentId
);
uuid_id!(
    /// A role row (system or custom) of one tenant.
    RoleId
);
uuid_id!(
    /// A division (team) of agents.
    DivisionId
);
uuid_id!(
    /// An API key.
    ApiKeyId
);
uuid_id!(
    /// A login session; the JWT's `sid` claim, revoked by logout.
    SessionId
);
