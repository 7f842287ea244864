//! Tenant usage: events appended per tenant and aggregate type (feeds quotas and billing).

use async_trait::async_trait;
use omnistream_domain::StreamId;
use sqlx::PgConnection;

use crate::{Projector, RecordedEvent};

/// Counts events per `(tenant_id, aggregate_type)` into `tenant_event_counters`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantUsageProjector;

#[async_trait]
impl Projector for TenantUsageProjector {
    fn name(&self) -> &'static str {
        "tenant_usage"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tenant_event_counters"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        let Ok(stream) = event.aggregate_id.parse::<StreamId>() else {
            tracing::warn!(aggregate_id = %event.aggregate_id, "event stream carries no tenant; not counted");
            return Ok(());
        };
        sqlx::query(
            r#"
            INSERT INTO tenant_event_counters (tenant_id, aggregate_type, event_count, last_event_at)
            VALUES ($1, $2, 1, $3)
            ON CONFLICT (tenant_id, aggregate_type) DO UPDATE
               SET event_count = tenant_event_counters.event_count + 1,
                   last_event_at = GREATEST(tenant_event_counters.last_event_at, EXCLUDED.last_event_at)
            "#,
        )
        .bind(stream.tenant_id.as_uuid())
        .bind(&event.aggregate_type)
        .bind(event.recorded_at)
        .execute(conn)
        .await?;
        Ok(())
    }
}
