//! Instagram onboarding with Instagram Login ("Instagram API with Instagram Login"): the app id
//! for the OAuth popup, and the connect that turns its code into an `ig-<user_id>` account.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{SecondsFormat, Utc};
use omnistream_domain::Channel;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use utoipa::ToSchema;

use super::connect::{app_credentials, upstream, OAuthConnectRequest};
use super::store::{self, ConnectedAccount};
use crate::app::config::Config;
use crate::app::ChannelClients;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ErrorResponse, Result};
use crate::http::extract::ValidJson;

/// `{app_id}` for the Instagram Login popup.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstagramAuthConfig {
    /// `INSTAGRAM_APP_ID`; null when not configured.
    pub app_id: Option<String>,
}

/// Get Instagram OAuth app config
#[utoipa::path(
    get, path = "/api/integrations/instagram/auth-config", tag = "Integrations",
    responses((status = 200, description = "INSTAGRAM_APP_ID (null when not configured, like the WhatsApp embedded-signup config)", body = InstagramAuthConfig),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn auth_config(
    State(config): State<Arc<Config>>,
    _caller: Authorized<perm::IntegrationsManage>,
) -> Json<InstagramAuthConfig> {
    Json(InstagramAuthConfig {
        app_id: config.instagram_app_id.clone(),
    })
}

/// One connected Instagram account.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstagramConnected {
    /// `ig-<user_id>`.
    pub account_key: String,
    /// The `@` handle (without `@`); the account id when Instagram sent none.
    pub username: String,
}

/// `InstagramConnectResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstagramConnectResponse {
    pub success: bool,
    /// Instagram Login authorizes one professional account, so this holds exactly one entry.
    pub connected: Vec<InstagramConnected>,
}

/// Connect Instagram account via OAuth
#[utoipa::path(
    post, path = "/api/integrations/instagram/connect", tag = "Integrations", request_body = OAuthConnectRequest,
    responses((status = 200, description = "The code is exchanged (api.instagram.com) for a short-lived token, that for a long-lived one (about 60 days); \
the profile's `user_id` (the professional account id webhooks carry) names the account `ig-<user_id>`, which is subscribed to the messaging webhooks \
and upserted active: config `ig_user_id`, `username`, `access_token` (encrypted, shown masked), `token_expires_at` (RFC 3339). \
A reconnect updates the existing account and reactivates it (its display name is kept); the channel's first account becomes the default.", body = InstagramConnectResponse),
              (status = 400, description = "validation_error: code and an absolute http(s) redirect_uri are required", body = ErrorResponse),
              (status = 403, body = ErrorResponse),
              (status = 409, description = "account_key_taken: the Instagram account is connected to another organization", body = ErrorResponse),
              (status = 502, description = "upstream_error: Instagram refused a step (bad or used code, redirect_uri mismatch…); nothing is saved", body = ErrorResponse),
              (status = 503, description = "INSTAGRAM_APP_ID / INSTAGRAM_APP_SECRET not configured", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn connect(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    ValidJson(body): ValidJson<OAuthConnectRequest>,
) -> Result<Json<InstagramConnectResponse>> {
    let (app_id, app_secret) = app_credentials(
        &config.instagram_app_id,
        &config.instagram_app_secret,
        "Instagram Login needs INSTAGRAM_APP_ID and INSTAGRAM_APP_SECRET",
    )?;
    let tenant = caller.tenant_id.as_uuid();
    let short = channels
        .instagram_oauth
        .instagram_code_token(app_id, app_secret, &body.redirect_uri, &body.code)
        .await
        .map_err(upstream)?;
    let long = channels
        .instagram
        .instagram_long_lived_token(app_secret, &short.access_token)
        .await
        .map_err(upstream)?;
    let profile = channels
        .instagram
        .instagram_profile(&long.access_token)
        .await
        .map_err(upstream)?;
    let account_key = Channel::Instagram.account_key(&profile.user_id);
    store::ensure_key_free(&pool, tenant, "instagram", &account_key).await?;

    let username = profile
        .username
        .clone()
        .unwrap_or_else(|| profile.user_id.clone());
    let expires_at = long
        .expires_at(Utc::now())
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true));
    let mut config = Map::new();
    config.insert("ig_user_id".into(), profile.user_id.clone().into());
    config.insert("username".into(), username.clone().into());
    config.insert("access_token".into(), long.access_token.clone().into());
    config.insert(
        "token_expires_at".into(),
        expires_at.map_or(Value::Null, Value::String),
    );
    let mut tx = pool.begin().await?;
    store::save_connected(
        &mut tx,
        &channels.secrets,
        &caller,
        ConnectedAccount {
            channel: "instagram",
            account_key: &account_key,
            display_name: &username,
            config,
        },
        |created| {
            json!({"channel": "instagram", "account_key": account_key, "username": username,
                   "created": created, "permissions": short.permissions})
        },
    )
    .await?;
    // Subscribed only once the key is saved (and so reserved); a refusal rolls the save back.
    channels
        .instagram
        .instagram_subscribe(&long.access_token)
        .await
        .map_err(upstream)?;
    tx.commit().await?;
    Ok(Json(InstagramConnectResponse {
        success: true,
        connected: vec![InstagramConnected {
            account_key,
            username,
        }],
    }))
}
