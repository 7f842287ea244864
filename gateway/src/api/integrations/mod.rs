//! Integrations tag: channel-level settings, integration accounts, and the connect flows of
//! WhatsApp (Embedded Signup), Instagram (Instagram Login) and Messenger (Facebook Login).
//!
//! Sensitive config values are encrypted at rest and masked in every response; a merge never
//! overwrites a stored secret with its masked form (contract §17).

mod accounts;
mod accounts_dto;
mod connect;
mod instagram;
mod messenger;
mod ownership;
mod whatsapp;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::api::activity_logs::{self as activity, Activity};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, ResultExt, Violations};
use crate::http::extract::{nullable, present, ValidJson, Validate};

/// `Integration`: a channel's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct Integration {
    pub id: Uuid,
    pub channel: String,
    pub is_active: bool,
    /// Sensitive values masked.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub division_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct IntegrationRow {
    id: Uuid,
    tenant_id: Uuid,
    channel: String,
    is_active: bool,
    config: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    division_id: Option<Uuid>,
}

impl IntegrationRow {
    fn into_api(self, state: &AppState) -> Integration {
        Integration {
            id: self.id,
            channel: self.channel,
            is_active: self.is_active,
            config: state.channels.secrets.mask_config(
                self.tenant_id,
                self.config.as_object().unwrap_or(&Map::new()),
            ),
            created_at: self.created_at,
            updated_at: self.updated_at,
            division_id: self.division_id,
        }
    }
}

/// Parses the `{channel}` path segment (400 `validation_error` otherwise).
pub(crate) fn parse_channel(raw: &str) -> Result<Channel> {
    raw.parse().map_err(|_| {
        ApiError::invalid_field("channel", "must be whatsapp, instagram, email or messenger")
    })
}

/// 422 `invalid_division` unless `division` is one of the tenant's.
pub(crate) async fn ensure_division(
    state: &AppState,
    tenant: Uuid,
    division: Option<Uuid>,
) -> Result<()> {
    let Some(division) = division else {
        return Ok(());
    };
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM divisions WHERE tenant_id = $1 AND id = $2)",
    )
    .bind(tenant)
    .bind(division)
    .fetch_one(&state.pool)
    .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::unprocessable(
            "invalid_division",
            "division_id is not a division of this organization",
        ))
    }
}

const INTEGRATION_COLUMNS: &str =
    "id, tenant_id, channel, is_active, config, created_at, updated_at, division_id";

/// List all channel integrations
#[utoipa::path(
    get, path = "/api/integrations", tag = "Integrations",
    responses((status = 200, body = Vec<Integration>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn list_integrations(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
) -> Result<Json<Vec<Integration>>> {
    let rows: Vec<IntegrationRow> = sqlx::query_as(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1
         ORDER BY array_position(ARRAY['whatsapp', 'instagram', 'email', 'messenger'], channel)"
    ))
    .bind(caller.tenant_id.as_uuid())
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.into_iter().map(|r| r.into_api(&state)).collect()))
}

/// Get a single integration by channel
#[utoipa::path(
    get, path = "/api/integrations/{channel}", tag = "Integrations", params(("channel" = String, Path)),
    responses((status = 200, description = "The channel's settings, or an empty default (nil id, inactive, `{}`) when not configured", body = Integration),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn get_integration(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
    Path(channel): Path<String>,
) -> Result<Json<Integration>> {
    let channel = parse_channel(&channel)?;
    let row: Option<IntegrationRow> = sqlx::query_as(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 AND channel = $2"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(channel.as_str())
    .fetch_optional(&state.pool)
    .await?;
    Ok(Json(match row {
        Some(row) => row.into_api(&state),
        None => {
            let now = Utc::now();
            Integration {
                id: Uuid::nil(),
                channel: channel.as_str().into(),
                is_active: false,
                config: Map::new(),
                created_at: now,
                updated_at: now,
                division_id: None,
            }
        }
    }))
}

/// `UpsertIntegration`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertIntegration {
    #[serde(default, deserialize_with = "present")]
    is_active: Option<bool>,
    /// Merged over the stored config; masked values (`****…`) are not overwritten; `null` removes a key.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    config: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    division_id: Option<Option<Uuid>>,
}

impl Validate for UpsertIntegration {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(config) = &self.config {
            accounts_dto::refuse_sealed_values(config, violations);
        }
    }
}

/// Create or update an integration (upsert)
#[utoipa::path(
    put, path = "/api/integrations/{channel}", tag = "Integrations", params(("channel" = String, Path)), request_body = UpsertIntegration,
    responses((status = 200, body = Integration), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 422, description = "invalid_division", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn upsert_integration(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    Path(channel): Path<String>,
    ValidJson(body): ValidJson<UpsertIntegration>,
) -> Result<Json<Integration>> {
    let channel = parse_channel(&channel)?;
    let tenant = caller.tenant_id.as_uuid();
    ensure_division(&state, tenant, body.division_id.flatten()).await?;
    let mut tx = state.pool.begin().await?;
    let stored: Option<IntegrationRow> = sqlx::query_as(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 AND channel = $2 FOR UPDATE"
    ))
    .bind(tenant)
    .bind(channel.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let stored_config = stored
        .as_ref()
        .and_then(|r| r.config.as_object().cloned())
        .unwrap_or_default();
    let config = omnistream_commands::infra::secrets::merge_config(
        &state.channels.secrets,
        tenant,
        &stored_config,
        &body.config.clone().unwrap_or_default(),
    );
    let row: IntegrationRow = sqlx::query_as(&format!(
        "INSERT INTO integrations (id, tenant_id, channel, is_active, config, division_id) VALUES ($1, $2, $3, COALESCE($4, false), $5, $6)
         ON CONFLICT (tenant_id, channel) DO UPDATE SET is_active = COALESCE($4, integrations.is_active), config = $5,
             division_id = CASE WHEN $7 THEN $6 ELSE integrations.division_id END, updated_at = now()
         RETURNING {INTEGRATION_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(channel.as_str())
    .bind(body.is_active)
    .bind(Value::Object(config))
    .bind(body.division_id.flatten())
    .bind(body.division_id.is_some())
    .fetch_one(&mut *tx)
    .await
    .on_constraint("integrations_division_fkey", || ApiError::unprocessable("invalid_division", "unknown division"))?;
    let integration = row.into_api(&state);
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "integration.updated",
            entity_type: "integration",
            entity_id: Some(integration.id.to_string()),
            details: json!({"channel": integration.channel, "is_active": integration.is_active,
                            "config_keys": body.config.map(|c| c.keys().cloned().collect::<Vec<_>>())}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(integration))
}

/// `{message, channel}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationDeleted {
    pub message: String,
    pub channel: String,
}

/// Delete an integration
#[utoipa::path(
    delete, path = "/api/integrations/{channel}", tag = "Integrations", params(("channel" = String, Path)),
    responses((status = 200, description = "The channel's accounts are kept", body = IntegrationDeleted), (status = 400, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, description = "Not configured", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
async fn delete_integration(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    Path(channel): Path<String>,
) -> Result<Json<IntegrationDeleted>> {
    let channel = parse_channel(&channel)?;
    let mut tx = state.pool.begin().await?;
    let deleted: Option<Uuid> = sqlx::query_scalar(
        "DELETE FROM integrations WHERE tenant_id = $1 AND channel = $2 RETURNING id",
    )
    .bind(caller.tenant_id.as_uuid())
    .bind(channel.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let id = deleted.ok_or(ApiError::NotFound)?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "integration.deleted",
            entity_type: "integration",
            entity_id: Some(id.to_string()),
            details: json!({"channel": channel}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(IntegrationDeleted {
        message: "integration deleted".into(),
        channel: channel.as_str().into(),
    }))
}

/// Routes of the Integrations tag.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_integrations))
        .routes(routes!(
            get_integration,
            upsert_integration,
            delete_integration
        ))
        .routes(routes!(accounts::list_accounts, accounts::create_account))
        .routes(routes!(
            accounts::get_account,
            accounts::update_account,
            accounts::delete_account
        ))
        .routes(routes!(accounts::set_default))
        .routes(routes!(whatsapp::whatsapp_status))
        .routes(routes!(whatsapp::embedded_signup_config))
        .routes(routes!(whatsapp::embedded_signup))
        .routes(routes!(instagram::auth_config))
        .routes(routes!(instagram::connect))
        .routes(routes!(messenger::auth_config))
        .routes(routes!(messenger::connect))
        .routes(routes!(messenger::connect_pages))
        .routes(routes!(messenger::disconnect))
        .routes(routes!(
            messenger::get_persistent_menu,
            messenger::set_persistent_menu
        ))
}
