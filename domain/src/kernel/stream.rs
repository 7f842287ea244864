//! Event-stream identifiers: every aggregate id carries its tenant, `"<tenant_id>:<uuid>"`.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::ids::TenantId;

/// The id of one aggregate's event stream, attributable to its tenant without reading payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamId {
    /// The tenant that owns the stream.
    pub tenant_id: TenantId,
    /// The aggregate's own id within the tenant.
    pub id: Uuid,
}

/// Why a string is not a [`StreamId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("aggregate id must be \"<tenant uuid>:<uuid>\"")]
pub struct StreamIdError;

impl StreamId {
    /// Builds the stream id of aggregate `id` in `tenant_id`.
    pub fn new(tenant_id: TenantId, id: Uuid) -> Self {
        Self { tenant_id, id }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tenant_id, self.id)
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tenant, id) = s.split_once(':').ok_or(StreamIdError)?;
        let tenant = Uuid::parse_str(tenant).map_err(|_| StreamIdError)?;
        let id = Uuid::parse_str(id).map_err(|_| StreamIdError)?;
        Ok(Self::new(TenantId(tenant), id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text_form() {
        let stream = StreamId::new(TenantId::new(), Uuid::new_v4());
        assert_eq!(stream.to_string().parse::<StreamId>(), Ok(stream));
    }

    #[test]
    fn rejects_ids_without_a_tenant() {
        assert_eq!(
            Uuid::new_v4().to_string().parse::<StreamId>(),
            Err(StreamIdError)
        );
        assert_eq!("x:y".parse::<StreamId>(), Err(StreamIdError));
    }
}
