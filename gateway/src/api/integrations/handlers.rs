//! The handlers of channel settings and integration accounts: each parses, checks, calls
//! [`super::store`] inside one transaction (the row and its activity row together), and maps the
//! result. The onboarding flows' handlers are in their channel's module.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use omnistream_commands::infra::secrets::{merge_config, SecretBox};
use omnistream_domain::Channel;
use serde_json::{json, Map, Value};
use sqlx::PgPool;

use super::dto::*;
use super::store::{self, load_account};
use super::{ownership, whatsapp};
use crate::app::config::Config;
use crate::app::ChannelClients;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result};
use crate::http::extract::{IdPath, ValidJson};

/// An email account's SMTP server: a port other than 25, 465, 587 or 2525, or an internal IP
/// literal, is refused unless `OUTGOING_WEBHOOKS_ALLOW_PRIVATE` (sending checks again after DNS).
fn check_smtp_server(config: &Config, account_config: &Map<String, Value>) -> Result<()> {
    omnistream_commands::channels::email::smtp::check_account_server(
        account_config,
        config.outgoing_webhooks_allow_private,
    )
    .map_err(|refused| ApiError::invalid_field(refused.field(), refused.to_string()))
}

/// List all channel integrations
#[utoipa::path(
    get, path = "/api/integrations", tag = "Integrations",
    responses((status = 200, body = Vec<Integration>), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_integrations(
    State(pool): State<PgPool>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
) -> Result<Json<Vec<Integration>>> {
    let rows = store::list_integrations(&pool, caller.tenant_id.as_uuid()).await?;
    Ok(Json(
        rows.into_iter().map(|r| r.into_api(&secrets)).collect(),
    ))
}

/// Get a single integration by channel
#[utoipa::path(
    get, path = "/api/integrations/{channel}", tag = "Integrations", params(("channel" = String, Path)),
    responses((status = 200, description = "The channel's settings, or an empty default (nil id, inactive, `{}`) when not configured", body = Integration),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_integration(
    State(pool): State<PgPool>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
    Path(channel): Path<String>,
) -> Result<Json<Integration>> {
    let channel = parse_channel(&channel)?;
    let row = store::find_integration(&pool, caller.tenant_id.as_uuid(), channel).await?;
    Ok(Json(match row {
        Some(row) => row.into_api(&secrets),
        None => Integration::unconfigured(channel),
    }))
}

/// Create or update an integration (upsert)
#[utoipa::path(
    put, path = "/api/integrations/{channel}", tag = "Integrations", params(("channel" = String, Path)), request_body = UpsertIntegration,
    responses((status = 200, body = Integration), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 422, description = "invalid_division", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn upsert_integration(
    State(pool): State<PgPool>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    Path(channel): Path<String>,
    ValidJson(body): ValidJson<UpsertIntegration>,
) -> Result<Json<Integration>> {
    let channel = parse_channel(&channel)?;
    let tenant = caller.tenant_id.as_uuid();
    store::ensure_division(&pool, tenant, body.division_id.flatten()).await?;
    let mut tx = pool.begin().await?;
    let stored_config = store::lock_integration_config(&mut tx, tenant, channel).await?;
    let config = merge_config(
        &secrets,
        tenant,
        &stored_config,
        &body.config.clone().unwrap_or_default(),
    );
    let row = store::upsert_integration(
        &mut tx,
        tenant,
        channel,
        body.is_active,
        body.division_id,
        config,
    )
    .await?;
    let integration = row.into_api(&secrets);
    let details = json!({"channel": integration.channel, "is_active": integration.is_active,
                         "config_keys": body.config.map(|c| c.keys().cloned().collect::<Vec<_>>())});
    store::record_integration(
        &mut tx,
        &caller,
        "integration.updated",
        integration.id,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(integration))
}

/// Delete an integration
#[utoipa::path(
    delete, path = "/api/integrations/{channel}", tag = "Integrations", params(("channel" = String, Path)),
    responses((status = 200, description = "The channel's accounts are kept", body = IntegrationDeleted), (status = 400, body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, description = "Not configured", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn delete_integration(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    Path(channel): Path<String>,
) -> Result<Json<IntegrationDeleted>> {
    let channel = parse_channel(&channel)?;
    let mut tx = pool.begin().await?;
    let id = store::delete_integration(&mut tx, caller.tenant_id.as_uuid(), channel)
        .await?
        .ok_or(ApiError::NotFound)?;
    let details = json!({"channel": channel});
    store::record_integration(&mut tx, &caller, "integration.deleted", id, details).await?;
    tx.commit().await?;
    Ok(Json(IntegrationDeleted {
        message: "integration deleted".into(),
        channel: channel.as_str().into(),
    }))
}

/// List integration accounts
#[utoipa::path(
    get, path = "/api/integrations/accounts", tag = "Integrations", params(AccountListQuery),
    responses((status = 200, description = "By channel, then default first, then oldest first", body = Vec<IntegrationAccount>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_accounts(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
    Query(query): Query<AccountListQuery>,
) -> Result<Json<Vec<IntegrationAccount>>> {
    let channel = query.channel.as_deref().map(parse_channel).transpose()?;
    let rows = store::list_accounts(&pool, caller.tenant_id.as_uuid(), channel).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| r.into_api(&secrets, &config.public_base_url))
            .collect(),
    ))
}

/// Create an integration account
#[utoipa::path(
    post, path = "/api/integrations/accounts", tag = "Integrations", request_body = CreateIntegrationAccount,
    responses((status = 201, description = "WhatsApp: the number is registered (when `pin` is given) and the app subscribed to the WABA through the Graph API; nothing is saved when Meta refuses", body = IntegrationAccount),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 409, description = "account_key_taken (for email also when the address is a tagged form of another organization's address, or the base of one)", body = ErrorResponse),
              (status = 422, description = "invalid_division; account_not_confirmed: Meta did not confirm that the Page access token reads `page_id` (Messenger, `GET /{page_id}?fields=id,name`) or that the token belongs to `ig_user_id` (Instagram, `GET /me?fields=user_id,username`), with Meta's reason. Messenger and Instagram keys are derived: `fb-<page_id>`, `ig-<ig_user_id>`", body = ErrorResponse),
              (status = 502, description = "upstream_error: the Graph API refused", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn create_account(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    ValidJson(body): ValidJson<CreateIntegrationAccount>,
) -> Result<(StatusCode, Json<IntegrationAccount>)> {
    let channel: Channel = body.channel.parse().map_err(anyhow::Error::from)?;
    let tenant = caller.tenant_id.as_uuid();
    let account_key = body.account_key.clone().unwrap_or_default();
    store::ensure_division(&pool, tenant, body.division_id).await?;
    if store::account_key_in_use(&pool, channel, &account_key).await? {
        return Err(store::account_key_taken());
    }
    let account_config = body.config.clone().unwrap_or_default();
    if channel == Channel::Email {
        check_smtp_server(&config, &account_config)?;
        ownership::ensure_email_key_free(&pool, tenant, &account_key).await?;
    }
    ownership::confirm_with_provider(&channels, channel, &account_config).await?;
    if channel == Channel::Whatsapp {
        whatsapp::onboard(&channels, &account_config).await?;
    }
    let mut tx = pool.begin().await?;
    let id = store::insert_account(
        &mut tx,
        &channels.secrets,
        tenant,
        channel,
        &account_key,
        &body,
        &account_config,
    )
    .await?;
    let account = load_account(&mut tx, tenant, id)
        .await?
        .into_api(&channels.secrets, &config.public_base_url);
    let details = json!({"channel": account.channel, "account_key": account.account_key, "is_default": account.is_default});
    store::record_account(&mut tx, &caller, "integration_account.created", id, details).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// Get an integration account by ID
#[utoipa::path(
    get, path = "/api/integrations/accounts/{id}", tag = "Integrations", params(("id" = Uuid, Path)),
    responses((status = 200, body = IntegrationAccount), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_account(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
    IdPath(id): IdPath,
) -> Result<Json<IntegrationAccount>> {
    let row = load_account(&mut *pool.acquire().await?, caller.tenant_id.as_uuid(), id).await?;
    Ok(Json(row.into_api(&secrets, &config.public_base_url)))
}

/// Update an integration account
#[utoipa::path(
    patch, path = "/api/integrations/accounts/{id}", tag = "Integrations", params(("id" = Uuid, Path)), request_body = UpdateIntegrationAccount,
    responses((status = 200, body = IntegrationAccount), (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse),
              (status = 404, body = ErrorResponse), (status = 409, description = "account_key_taken or default_account_required", body = ErrorResponse),
              (status = 422, description = "invalid_division", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn update_account(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateIntegrationAccount>,
) -> Result<Json<IntegrationAccount>> {
    let tenant = caller.tenant_id.as_uuid();
    store::ensure_division(&pool, tenant, body.division_id.flatten()).await?;
    let mut tx = pool.begin().await?;
    let current = load_account(&mut tx, tenant, id).await?;
    // A derived key, and the id it is derived from, never change: a key renamed onto another
    // Page, account or number would take its customers' messages.
    let derived_from = match current.channel.as_str() {
        "whatsapp" => Some("phone_number_id"),
        "messenger" => Some("page_id"),
        "instagram" => Some("ig_user_id"),
        _ => None,
    };
    if let Some(id_key) = derived_from {
        if body
            .account_key
            .as_ref()
            .is_some_and(|k| *k != current.account_key)
        {
            return Err(ApiError::invalid_field(
                "account_key",
                format!("is derived from {id_key} for this channel and cannot change"),
            ));
        }
        let stored_id = current.config.get(id_key).and_then(Value::as_str);
        if body.config.as_ref().is_some_and(|c| {
            c.get(id_key)
                .is_some_and(|given| given.as_str() != stored_id)
        }) {
            return Err(ApiError::invalid_field(
                format!("config.{id_key}"),
                "cannot change; connect another account instead",
            ));
        }
    }
    let is_email = current.channel == Channel::Email.as_str();
    if is_email {
        if let Some(key) = &body.account_key {
            ownership::ensure_email_key_free(&pool, tenant, &key.to_lowercase()).await?;
        }
    }
    if body.is_default == Some(false) && current.is_default {
        return Err(ApiError::conflict(
            "default_account_required",
            "the channel keeps a default account: set another account as default instead",
        ));
    }
    let stored = current.config.as_object().cloned().unwrap_or_default();
    let account_config = merge_config(
        &secrets,
        tenant,
        &stored,
        &body.config.clone().unwrap_or_default(),
    );
    if is_email {
        check_smtp_server(&config, &account_config)?;
    }
    let account_key = body.account_key.as_deref().map(|key| {
        if is_email {
            key.to_lowercase()
        } else {
            key.to_owned()
        }
    });
    store::update_account(
        &mut tx,
        tenant,
        &current,
        &body,
        account_key,
        account_config,
    )
    .await?;
    let account = load_account(&mut tx, tenant, id)
        .await?
        .into_api(&secrets, &config.public_base_url);
    let details = json!({"account_key": body.account_key, "display_name": body.display_name, "is_active": body.is_active,
                         "is_default": body.is_default, "config_keys": body.config.map(|c| c.keys().cloned().collect::<Vec<_>>())});
    store::record_account(&mut tx, &caller, "integration_account.updated", id, details).await?;
    tx.commit().await?;
    Ok(Json(account))
}

/// Delete an integration account
#[utoipa::path(
    delete, path = "/api/integrations/accounts/{id}", tag = "Integrations", params(("id" = Uuid, Path)),
    responses((status = 200, description = "A deleted default is replaced by the oldest active account, else the oldest", body = AccountDeleted),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn delete_account(
    State(pool): State<PgPool>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<AccountDeleted>> {
    let tenant = caller.tenant_id.as_uuid();
    let mut tx = pool.begin().await?;
    let account = load_account(&mut tx, tenant, id).await?;
    store::delete_account(&mut tx, tenant, &account).await?;
    let details = json!({"channel": account.channel, "account_key": account.account_key});
    store::record_account(&mut tx, &caller, "integration_account.deleted", id, details).await?;
    tx.commit().await?;
    Ok(Json(AccountDeleted {
        message: "account deleted".into(),
        id,
    }))
}

/// Set an integration account as the default for its channel
#[utoipa::path(
    post, path = "/api/integrations/accounts/{id}/set-default", tag = "Integrations", params(("id" = Uuid, Path)),
    responses((status = 200, body = IntegrationAccount), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn set_default(
    State(pool): State<PgPool>,
    State(config): State<Arc<Config>>,
    State(secrets): State<SecretBox>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<IntegrationAccount>> {
    let tenant = caller.tenant_id.as_uuid();
    let mut tx = pool.begin().await?;
    let account = load_account(&mut tx, tenant, id).await?;
    store::make_default(&mut tx, tenant, &account.channel, id).await?;
    let account = load_account(&mut tx, tenant, id)
        .await?
        .into_api(&secrets, &config.public_base_url);
    store::record_account(
        &mut tx,
        &caller,
        "integration_account.set_default",
        id,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(account))
}
