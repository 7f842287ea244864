//! WhatsApp onboarding through the Graph API: registration, subscription, health, embedded signup.

use axum::extract::State;
use axum::Json;
use omnistream_commands::whatsapp::GraphError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::accounts::{load_account, make_default, verify_token, ACCOUNT_COLUMNS};
use crate::activity::{self, Activity};
use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ErrorResponse, Result, Violations};
use crate::extract::{check_text, IdPath, ValidJson, Validate};

fn upstream(error: GraphError) -> ApiError {
    let upstream_status = match &error {
        GraphError::Api { status, .. } => Some(*status),
        GraphError::Transport(_) => None,
    };
    ApiError::Upstream {
        provider: "meta",
        upstream_status,
        message: format!("Meta Graph API: {error}"),
    }
}

fn text<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Registers the number (when a `pin` is configured) and subscribes the app to the WABA.
pub(super) async fn onboard(state: &AppState, config: &Map<String, Value>) -> Result<()> {
    let (Some(phone_number_id), Some(waba_id), Some(token)) = (
        text(config, "phone_number_id"),
        text(config, "waba_id"),
        text(config, "access_token"),
    ) else {
        return Err(ApiError::invalid_field(
            "config",
            "phone_number_id, waba_id and access_token are required",
        ));
    };
    // The supplied token must be able to read the number: a tenant cannot claim (and so receive
    // the webhooks of) a phone number id it does not control.
    state
        .graph
        .phone_number(token, phone_number_id)
        .await
        .map_err(upstream)?;
    if let Some(pin) = text(config, "pin") {
        state
            .graph
            .register_phone_number(token, phone_number_id, pin)
            .await
            .map_err(upstream)?;
    }
    state
        .graph
        .subscribe_app(token, waba_id)
        .await
        .map_err(upstream)?;
    Ok(())
}

/// `WhatsAppAccountStatus`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhatsAppAccountStatus {
    pub account_id: Uuid,
    pub display_name: String,
    pub phone_number_id: Option<String>,
    pub waba_id: Option<String>,
    /// All three calls succeeded and the app is subscribed.
    pub healthy: bool,
    #[schema(value_type = Object)]
    pub phone_number: Value,
    #[schema(value_type = Object)]
    pub waba: Value,
    #[schema(value_type = Object)]
    pub subscribed_apps: Value,
    pub subscribed_ok: bool,
}

fn outcome(result: std::result::Result<Value, GraphError>) -> (bool, Value) {
    match result {
        Ok(value) => (true, value),
        Err(error) => (false, json!({"error": error.to_string()})),
    }
}

/// Fetch WhatsApp account health from Meta Graph API
#[utoipa::path(
    get, path = "/api/integrations/accounts/{id}/whatsapp-status", tag = "Integrations", params(("id" = Uuid, Path)),
    responses((status = 200, description = "Graph errors are reported inside the objects and make `healthy` false", body = WhatsAppAccountStatus),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "not_whatsapp_account", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn whatsapp_status(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<WhatsAppAccountStatus>> {
    let account = load_account(
        &mut *state.pool.acquire().await?,
        caller.tenant_id.as_uuid(),
        id,
    )
    .await?;
    if account.channel != "whatsapp" {
        return Err(ApiError::unprocessable(
            "not_whatsapp_account",
            "this is not a WhatsApp account",
        ));
    }
    let config = account.opened_config(&state)?;
    let token = text(&config, "access_token").unwrap_or_default();
    let phone_number_id = text(&config, "phone_number_id").map(str::to_owned);
    let waba_id = text(&config, "waba_id").map(str::to_owned);
    let (phone, waba, apps) = tokio::join!(
        state
            .graph
            .phone_number(token, phone_number_id.as_deref().unwrap_or_default()),
        state
            .graph
            .waba(token, waba_id.as_deref().unwrap_or_default()),
        state
            .graph
            .subscribed_apps(token, waba_id.as_deref().unwrap_or_default()),
    );
    let (phone_ok, phone_number) = outcome(phone);
    let (waba_ok, waba) = outcome(waba);
    let (apps_ok, subscribed_apps) = outcome(apps);
    let subscribed_ok = apps_ok
        && subscribed_apps
            .get("data")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
    Ok(Json(WhatsAppAccountStatus {
        account_id: account.id,
        display_name: account.display_name,
        phone_number_id,
        waba_id,
        healthy: phone_ok && waba_ok && apps_ok && subscribed_ok,
        phone_number,
        waba,
        subscribed_apps,
        subscribed_ok,
    }))
}

/// `{app_id, config_id}` for the Facebook JS SDK.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddedSignupConfig {
    pub app_id: Option<String>,
    pub config_id: Option<String>,
}

/// Get WhatsApp Embedded Signup config
#[utoipa::path(
    get, path = "/api/integrations/whatsapp/embedded-signup-config", tag = "Integrations",
    responses((status = 200, description = "META_APP_ID and META_CONFIG_ID (null when not configured)", body = EmbeddedSignupConfig),
              (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn embedded_signup_config(
    State(state): State<AppState>,
    _caller: Authorized<perm::IntegrationsManage>,
) -> Json<EmbeddedSignupConfig> {
    Json(EmbeddedSignupConfig {
        app_id: state.config.meta_app_id.clone(),
        config_id: state.config.meta_config_id.clone(),
    })
}

/// `EmbeddedSignupRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedSignupRequest {
    /// Authorization code from the Embedded Signup JS SDK.
    code: String,
    waba_id: String,
    phone_number_id: String,
}

impl Validate for EmbeddedSignupRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "code", &mut self.code, 1, 2000);
        check_text(violations, "waba_id", &mut self.waba_id, 1, 64);
        check_text(
            violations,
            "phone_number_id",
            &mut self.phone_number_id,
            1,
            64,
        );
        for (field, value) in [
            ("waba_id", &self.waba_id),
            ("phone_number_id", &self.phone_number_id),
        ] {
            if !value.chars().all(|c| c.is_ascii_digit()) {
                violations.add(field, "must be Meta's numeric id");
            }
        }
    }
}

/// `EmbeddedSignupResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbeddedSignupResponse {
    pub success: bool,
    pub account_key: String,
    pub display_name: String,
    pub waba_id: String,
    pub phone_number_id: String,
}

/// Complete WhatsApp Embedded Signup
#[utoipa::path(
    post, path = "/api/integrations/whatsapp/embedded-signup", tag = "Integrations", request_body = EmbeddedSignupRequest,
    responses((status = 200, description = "The code is exchanged for a token, the account upserted (`wa-<phone_number_id>`) and subscribed", body = EmbeddedSignupResponse),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 409, description = "account_key_taken: the number belongs to another organization", body = ErrorResponse),
              (status = 502, description = "upstream_error", body = ErrorResponse),
              (status = 503, description = "META_APP_ID / META_APP_SECRET not configured", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn embedded_signup(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    ValidJson(body): ValidJson<EmbeddedSignupRequest>,
) -> Result<Json<EmbeddedSignupResponse>> {
    let (Some(app_id), Some(app_secret)) =
        (&state.config.meta_app_id, &state.config.meta_app_secret)
    else {
        return Err(ApiError::Status {
            status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
            code: "service_unavailable",
            message: "embedded signup needs META_APP_ID and META_APP_SECRET".into(),
        });
    };
    let tenant = caller.tenant_id.as_uuid();
    let account_key = format!("wa-{}", body.phone_number_id);
    let owner: Option<Uuid> =
        sqlx::query_scalar("SELECT tenant_id FROM integration_accounts WHERE channel = 'whatsapp' AND account_key = $1")
            .bind(&account_key)
            .fetch_optional(&state.pool)
            .await?;
    if owner.is_some_and(|owner| owner != tenant) {
        return Err(ApiError::conflict(
            "account_key_taken",
            "this number is connected to another organization",
        ));
    }
    let token = state
        .graph
        .exchange_code(app_id, app_secret.expose(), &body.code)
        .await
        .map_err(upstream)?;
    state
        .graph
        .subscribe_app(&token, &body.waba_id)
        .await
        .map_err(upstream)?;
    let display_name = state
        .graph
        .phone_number(&token, &body.phone_number_id)
        .await
        .map_err(upstream)?
        .as_object()
        .cloned()
        .and_then(|p| {
            p.get("display_phone_number")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| account_key.clone());
    let config = json!({"phone_number_id": body.phone_number_id, "waba_id": body.waba_id, "access_token": token});
    let sealed = Value::Object(
        state
            .secrets
            .seal_config(config.as_object().unwrap_or(&Map::new())),
    );
    let mut tx = state.pool.begin().await?;
    let existing: Option<Uuid> = sqlx::query_scalar(
        "SELECT id FROM integration_accounts WHERE tenant_id = $1 AND channel = 'whatsapp' AND account_key = $2 FOR UPDATE",
    )
    .bind(tenant)
    .bind(&account_key)
    .fetch_optional(&mut *tx)
    .await?;
    let id = match existing {
        Some(id) => {
            sqlx::query(&format!(
                "UPDATE integration_accounts SET config = config || $3, is_active = true, updated_at = now()
                 WHERE tenant_id = $1 AND id = $2 RETURNING {ACCOUNT_COLUMNS}"
            ))
            .bind(tenant)
            .bind(id)
            .bind(&sealed)
            .execute(&mut *tx)
            .await?;
            id
        }
        None => {
            let id = Uuid::new_v4();
            sqlx::query(
                "INSERT INTO integration_accounts (id, tenant_id, channel, account_key, display_name, is_active, config, verify_token)
                 VALUES ($1, $2, 'whatsapp', $3, $4, true, $5, $6)",
            )
            .bind(id)
            .bind(tenant)
            .bind(&account_key)
            .bind(&display_name)
            .bind(&sealed)
            .bind(verify_token())
            .execute(&mut *tx)
            .await?;
            let has_default: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM integration_accounts WHERE tenant_id = $1 AND channel = 'whatsapp' AND is_default)",
            )
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
            if !has_default {
                make_default(&mut tx, tenant, "whatsapp", id).await?;
            }
            id
        }
    };
    let account = load_account(&mut tx, tenant, id).await?;
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "integration_account.connected",
            entity_type: "integration_account",
            entity_id: Some(id.to_string()),
            details: json!({"channel": "whatsapp", "account_key": account_key, "waba_id": body.waba_id}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(EmbeddedSignupResponse {
        success: true,
        account_key,
        display_name: account.display_name,
        waba_id: body.waba_id,
        phone_number_id: body.phone_number_id,
    }))
}
