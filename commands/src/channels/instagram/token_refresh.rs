//! Keeps Instagram Login tokens alive. A long-lived Instagram token lasts about 60 days and can
//! be refreshed once it is a day old; an account whose `token_expires_at` is within
//! [`REFRESH_AHEAD`] gets a fresh token (and expiry) in its encrypted config. A refresh that
//! fails is logged and tried again on the next round, until the token expires.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::channels::meta::GraphClient;
use crate::infra::secrets::SecretBox;

/// An account's id, its tenant (its sealed values are bound to it) and its stored config.
type AccountConfig = (Uuid, Uuid, sqlx::types::Json<Map<String, Value>>);

/// How long before expiry a token is refreshed.
pub const REFRESH_AHEAD: chrono::Duration = chrono::Duration::days(10);

/// How often the refresher looks for expiring tokens.
const ROUND_EVERY: Duration = Duration::from_secs(3600);

/// Refreshes expiring Instagram tokens.
#[derive(Clone)]
pub struct InstagramTokenRefresher {
    pub pool: PgPool,
    pub secrets: SecretBox,
    /// The Instagram Login Graph API (`INSTAGRAM_BASE_URL`).
    pub instagram: GraphClient,
}

impl InstagramTokenRefresher {
    /// Refreshes every due token each hour until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.refresh_due(Utc::now()).await {
                tracing::warn!(%error, "instagram token refresh round failed");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(ROUND_EVERY) => {}
            }
        }
    }

    /// One round at `now`: refreshes the active Instagram accounts whose token expires within
    /// [`REFRESH_AHEAD`] (and has not expired); returns how many were refreshed.
    pub async fn refresh_due(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let accounts: Vec<AccountConfig> = sqlx::query_as(
            "SELECT id, tenant_id, config FROM integration_accounts
             WHERE channel = 'instagram' AND is_active AND config ? 'token_expires_at'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut refreshed = 0;
        for (id, tenant, config) in accounts {
            let expires_at = config
                .get("token_expires_at")
                .and_then(Value::as_str)
                .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&Utc));
            let due = expires_at.is_some_and(|at| at > now && at - now <= REFRESH_AHEAD);
            if !due {
                continue;
            }
            let Ok(opened) = self.secrets.open_config(tenant, &config) else {
                tracing::warn!(account_id = %id, "instagram token cannot be decrypted; not refreshed");
                continue;
            };
            let Some(token) = opened.get("access_token").and_then(Value::as_str) else {
                continue;
            };
            match self.instagram.instagram_refresh_token(token).await {
                Ok(fresh) => {
                    let mut update = Map::new();
                    if let Some(at) = fresh.expires_at(now) {
                        update.insert("token_expires_at".into(), at.to_rfc3339().into());
                    }
                    update.insert("access_token".into(), fresh.access_token.into());
                    let sealed = Value::Object(self.secrets.seal_config(tenant, &update));
                    sqlx::query(
                        "UPDATE integration_accounts SET config = config || $2, updated_at = now() WHERE id = $1",
                    )
                    .bind(id)
                    .bind(sealed)
                    .execute(&self.pool)
                    .await?;
                    refreshed += 1;
                }
                Err(error) => {
                    tracing::warn!(account_id = %id, %error, "instagram token refresh failed");
                }
            }
        }
        Ok(refreshed)
    }
}
