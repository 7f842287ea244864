//! The response row and the query of the Activity Logs tag, and their validation.

use chrono::{DateTime, Utc};
use omnistream_projections::sql::{TimeBound, TimeRange};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::error::Violations;
use crate::http::extract::Paged;
use crate::http::extract::{check_text, PageRequest, Validate};

/// One audit row.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct ActivityLog {
    id: Uuid,
    agent_id: Option<Uuid>,
    agent_name: Option<String>,
    action: String,
    entity_type: String,
    entity_id: Option<String>,
    #[schema(value_type = Object)]
    details: Value,
    ip_address: Option<String>,
    user_agent: Option<String>,
    created_at: DateTime<Utc>,
}

/// Filters of `GET /api/activity-logs`. `from`/`to` take RFC 3339 or `YYYY-MM-DD` (tenant
/// timezone; a `to` date is inclusive).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityLogQuery {
    page: Option<i64>,
    per_page: Option<i64>,
    pub(super) agent_id: Option<Uuid>,
    pub(super) action: Option<String>,
    pub(super) entity_type: Option<String>,
    pub(super) entity_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// The page and the time range, parsed by validation.
    #[serde(skip)]
    #[param(ignore)]
    pub(super) parsed: Option<(PageRequest, TimeRange)>,
}

/// Reads a `from`/`to` filter value: an RFC 3339 timestamp or a `YYYY-MM-DD` date; anything
/// else is a violation of `field`.
fn parse_time_bound(
    violations: &mut Violations,
    field: &str,
    raw: &Option<String>,
) -> Option<TimeBound> {
    let raw = raw.as_deref()?;
    let bound = TimeBound::parse(raw);
    if bound.is_none() {
        violations.add(field, "must be an RFC 3339 timestamp or a YYYY-MM-DD date");
    }
    bound
}

impl Paged for ActivityLogQuery {
    fn paging(&self) -> (Option<i64>, Option<i64>) {
        (self.page, self.per_page)
    }
}

impl Validate for ActivityLogQuery {
    fn validate(&mut self, violations: &mut Violations) {
        let page = self.check_paging(violations);
        for (field, value) in [
            ("action", &mut self.action),
            ("entity_type", &mut self.entity_type),
            ("entity_id", &mut self.entity_id),
        ] {
            if let Some(text) = value {
                check_text(violations, field, text, 0, 200);
            }
        }
        let range = TimeRange {
            from: parse_time_bound(violations, "from", &self.from),
            to: parse_time_bound(violations, "to", &self.to),
        };
        self.parsed = Some((page, range));
    }
}
