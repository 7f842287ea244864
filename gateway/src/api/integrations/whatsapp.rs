//! WhatsApp onboarding through the Graph API: registration, subscription, health, embedded signup.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use omnistream_commands::channels::meta::GraphError;
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::connect::{app_credentials, channel_account, upstream, FacebookLoginConfig};
use super::dto::config_text as text;
use super::store::{self, load_account, ConnectedAccount};
use crate::app::config::Config;
use crate::app::ChannelClients;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{check_text, IdPath, ValidJson, Validate};

/// Registers the number (when a `pin` is configured) and subscribes the app to the WABA.
pub(super) async fn onboard(channels: &ChannelClients, config: &Map<String, Value>) -> Result<()> {
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
    channels
        .graph
        .phone_number(token, phone_number_id)
        .await
        .map_err(upstream)?;
    if let Some(pin) = text(config, "pin") {
        channels
            .graph
            .register_phone_number(token, phone_number_id, pin)
            .await
            .map_err(upstream)?;
    }
    channels
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
    State(pool): State<PgPool>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<WhatsAppAccountStatus>> {
    let (account, config) = channel_account(
        &pool,
        &channels.secrets,
        caller.tenant_id.as_uuid(),
        id,
        "whatsapp",
        "not_whatsapp_account",
    )
    .await?;
    let token = text(&config, "access_token").unwrap_or_default();
    let phone_number_id = text(&config, "phone_number_id").map(str::to_owned);
    let waba_id = text(&config, "waba_id").map(str::to_owned);
    let (phone, waba, apps) = tokio::join!(
        channels
            .graph
            .phone_number(token, phone_number_id.as_deref().unwrap_or_default()),
        channels
            .graph
            .waba(token, waba_id.as_deref().unwrap_or_default()),
        channels
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

/// Get WhatsApp Embedded Signup config
#[utoipa::path(
    get, path = "/api/integrations/whatsapp/embedded-signup-config", tag = "Integrations",
    responses((status = 200, description = "META_APP_ID and META_CONFIG_ID (null when not configured)", body = FacebookLoginConfig),
              (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn embedded_signup_config(
    State(config): State<Arc<Config>>,
    _caller: Authorized<perm::IntegrationsManage>,
) -> Json<FacebookLoginConfig> {
    Json(FacebookLoginConfig {
        app_id: config.meta_app_id.clone(),
        config_id: config.meta_config_id.clone(),
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
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    ValidJson(body): ValidJson<EmbeddedSignupRequest>,
) -> Result<Json<EmbeddedSignupResponse>> {
    let (app_id, app_secret) = app_credentials(
        &config.meta_app_id,
        &config.meta_app_secret,
        "embedded signup needs META_APP_ID and META_APP_SECRET",
    )?;
    let tenant = caller.tenant_id.as_uuid();
    let account_key = Channel::Whatsapp.account_key(&body.phone_number_id);
    store::ensure_key_free(&pool, tenant, "whatsapp", &account_key).await?;
    let token = channels
        .graph
        .exchange_code(app_id, app_secret, &body.code)
        .await
        .map_err(upstream)?;
    channels
        .graph
        .subscribe_app(&token, &body.waba_id)
        .await
        .map_err(upstream)?;
    let display_name = channels
        .graph
        .phone_number(&token, &body.phone_number_id)
        .await
        .map_err(upstream)?
        .get("display_phone_number")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| account_key.clone());
    let account_config = json!({"phone_number_id": body.phone_number_id, "waba_id": body.waba_id, "access_token": token});
    let mut tx = pool.begin().await?;
    let id = store::save_connected(
        &mut tx,
        &channels.secrets,
        &caller,
        ConnectedAccount {
            channel: "whatsapp",
            account_key: &account_key,
            display_name: &display_name,
            config: account_config.as_object().cloned().unwrap_or_default(),
        },
        |_| json!({"channel": "whatsapp", "account_key": account_key, "waba_id": body.waba_id}),
    )
    .await?;
    let account = load_account(&mut tx, tenant, id).await?;
    tx.commit().await?;
    Ok(Json(EmbeddedSignupResponse {
        success: true,
        account_key,
        display_name: account.display_name,
        waba_id: body.waba_id,
        phone_number_id: body.phone_number_id,
    }))
}
