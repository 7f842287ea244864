//! Tenant usage: events appended per tenant and aggregate type (feeds quotas and billing).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use omnistream_domain::StreamId;
use sqlx::PgConnection;
use uuid::Uuid;

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

    /// Counting needs the stream, the aggregate type and the time only.
    fn reads_bodies(&self) -> bool {
        false
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> anyhow::Result<()> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// Counts the batch in memory, then upserts one row per (tenant, aggregate type).
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> anyhow::Result<()> {
        let mut counts: HashMap<(Uuid, &str), (i64, DateTime<Utc>)> = HashMap::new();
        for event in events {
            let Ok(stream) = event.aggregate_id.parse::<StreamId>() else {
                tracing::warn!(aggregate_id = %event.aggregate_id, "event stream carries no tenant; not counted");
                continue;
            };
            let entry = counts
                .entry((stream.tenant_id.as_uuid(), event.aggregate_type.as_str()))
                .or_insert((0, event.recorded_at));
            entry.0 += 1;
            entry.1 = entry.1.max(event.recorded_at);
        }
        if counts.is_empty() {
            return Ok(());
        }
        let mut tenants = Vec::with_capacity(counts.len());
        let mut types = Vec::with_capacity(counts.len());
        let mut numbers = Vec::with_capacity(counts.len());
        let mut latest = Vec::with_capacity(counts.len());
        for ((tenant, aggregate_type), (count, at)) in counts {
            tenants.push(tenant);
            types.push(aggregate_type.to_owned());
            numbers.push(count);
            latest.push(at);
        }
        sqlx::query(
            r#"
            INSERT INTO tenant_event_counters (tenant_id, aggregate_type, event_count, last_event_at)
            SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::timestamptz[])
            ON CONFLICT (tenant_id, aggregate_type) DO UPDATE
               SET event_count = tenant_event_counters.event_count + EXCLUDED.event_count,
                   last_event_at = GREATEST(tenant_event_counters.last_event_at, EXCLUDED.last_event_at)
            "#,
        )
        .bind(&tenants)
        .bind(&types)
        .bind(&numbers)
        .bind(&latest)
        .execute(conn)
        .await?;
        Ok(())
    }
}
