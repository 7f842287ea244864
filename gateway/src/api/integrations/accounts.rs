//! Integration accounts: connected numbers, pages, mailboxes and Instagram accounts. The
//! handlers and the account-row helpers the connect flows share; the bodies and config checks
//! are in [`super::accounts_dto`].

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use omnistream_domain::Channel;
use rand::RngCore;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::accounts_dto::{
    AccountDeleted, AccountListQuery, AccountRow, CreateIntegrationAccount, IntegrationAccount,
    UpdateIntegrationAccount,
};
use super::{ensure_division, parse_channel};
use crate::api::activity_logs::{self as activity, Activity};
use crate::app::AppState;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, ResultExt};
use crate::http::extract::IdPath;
use crate::http::extract::ValidJson;

pub(super) const ACCOUNT_COLUMNS: &str =
    "id, tenant_id, channel, account_key, display_name, is_active, is_default, config, created_at, updated_at, division_id, verify_token";

/// The tenant's account `id` (404 otherwise).
pub(super) async fn load_account(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
) -> Result<AccountRow> {
    sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM integration_accounts WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(ApiError::NotFound)
}

/// 409 `account_key_taken`.
pub(super) fn account_key_taken() -> ApiError {
    ApiError::conflict(
        "account_key_taken",
        "another account already uses this account_key",
    )
}

/// Makes `id` the channel's only default.
pub(super) async fn make_default(
    conn: &mut PgConnection,
    tenant: Uuid,
    channel: &str,
    id: Uuid,
) -> Result<()> {
    sqlx::query("UPDATE integration_accounts SET is_default = false, updated_at = now() WHERE tenant_id = $1 AND channel = $2 AND id <> $3 AND is_default")
        .bind(tenant)
        .bind(channel)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE integration_accounts SET is_default = true, updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// 32 random hex characters.
pub(super) fn verify_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// An email account's SMTP server: a port other than 25, 465, 587 or 2525, or an internal IP
/// literal, is refused unless `OUTGOING_WEBHOOKS_ALLOW_PRIVATE` (sending checks again after DNS).
fn check_smtp_server(state: &AppState, config: &Map<String, Value>) -> Result<()> {
    omnistream_commands::channels::email::smtp::check_account_server(
        config,
        state.config.outgoing_webhooks_allow_private,
    )
    .map_err(|refused| ApiError::invalid_field(refused.field(), refused.to_string()))
}

/// List integration accounts
#[utoipa::path(
    get, path = "/api/integrations/accounts", tag = "Integrations", params(AccountListQuery),
    responses((status = 200, description = "By channel, then default first, then oldest first", body = Vec<IntegrationAccount>),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn list_accounts(
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
    Query(query): Query<AccountListQuery>,
) -> Result<Json<Vec<IntegrationAccount>>> {
    let channel = query.channel.as_deref().map(parse_channel).transpose()?;
    let rows: Vec<AccountRow> = sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM integration_accounts WHERE tenant_id = $1 AND ($2::text IS NULL OR channel = $2)
         ORDER BY array_position(ARRAY['whatsapp', 'instagram', 'email', 'messenger'], channel), is_default DESC, created_at, id"
    ))
    .bind(caller.tenant_id.as_uuid())
    .bind(channel.map(|c| c.as_str()))
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.into_iter().map(|r| r.into_api(&state)).collect()))
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
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    ValidJson(body): ValidJson<CreateIntegrationAccount>,
) -> Result<(StatusCode, Json<IntegrationAccount>)> {
    let channel: Channel = body.channel.parse().map_err(anyhow::Error::from)?;
    let tenant = caller.tenant_id.as_uuid();
    let account_key = body.account_key.clone().unwrap_or_default();
    ensure_division(&state, tenant, body.division_id).await?;
    let taken: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM integration_accounts WHERE channel = $1 AND account_key = $2)")
            .bind(channel.as_str())
            .bind(&account_key)
            .fetch_one(&state.pool)
            .await?;
    if taken {
        return Err(account_key_taken());
    }
    let config = body.config.clone().unwrap_or_default();
    if channel == Channel::Email {
        check_smtp_server(&state, &config)?;
        super::ownership::ensure_email_key_free(&state, tenant, &account_key).await?;
    }
    super::ownership::confirm_with_provider(&state, channel, &config).await?;
    if channel == Channel::Whatsapp {
        super::whatsapp::onboard(&state, &config).await?;
    }
    let mut tx = state.pool.begin().await?;
    let first: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM integration_accounts WHERE tenant_id = $1 AND channel = $2)")
        .bind(tenant)
        .bind(channel.as_str())
        .fetch_one(&mut *tx)
        .await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO integration_accounts (id, tenant_id, channel, account_key, display_name, is_active, is_default, division_id, config, verify_token)
         VALUES ($1, $2, $3, $4, $5, $6, false, $7, $8, $9)",
    )
    .bind(id)
    .bind(tenant)
    .bind(channel.as_str())
    .bind(&account_key)
    .bind(body.display_name.clone().unwrap_or_else(|| account_key.clone()))
    .bind(body.is_active)
    .bind(body.division_id)
    .bind(Value::Object(state.channels.secrets.seal_config(tenant, &config)))
    .bind(verify_token())
    .execute(&mut *tx)
    .await
    .on_constraint("integration_accounts_channel_key", account_key_taken)?;
    if body.is_default || first {
        make_default(&mut tx, tenant, channel.as_str(), id).await?;
    }
    let account = load_account(&mut tx, tenant, id).await?.into_api(&state);
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "integration_account.created",
            entity_type: "integration_account",
            entity_id: Some(id.to_string()),
            details: json!({"channel": account.channel, "account_key": account.account_key, "is_default": account.is_default}),
        },
    )
    .await?;
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
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsView>,
    IdPath(id): IdPath,
) -> Result<Json<IntegrationAccount>> {
    let row = load_account(
        &mut *state.pool.acquire().await?,
        caller.tenant_id.as_uuid(),
        id,
    )
    .await?;
    Ok(Json(row.into_api(&state)))
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
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<UpdateIntegrationAccount>,
) -> Result<Json<IntegrationAccount>> {
    let tenant = caller.tenant_id.as_uuid();
    ensure_division(&state, tenant, body.division_id.flatten()).await?;
    let mut tx = state.pool.begin().await?;
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
    if current.channel == Channel::Email.as_str() {
        if let Some(key) = &body.account_key {
            super::ownership::ensure_email_key_free(&state, tenant, &key.to_lowercase()).await?;
        }
    }
    if body.is_default == Some(false) && current.is_default {
        return Err(ApiError::conflict(
            "default_account_required",
            "the channel keeps a default account: set another account as default instead",
        ));
    }
    let stored = current.config.as_object().cloned().unwrap_or_default();
    let config = omnistream_commands::infra::secrets::merge_config(
        &state.channels.secrets,
        tenant,
        &stored,
        &body.config.clone().unwrap_or_default(),
    );
    if current.channel == Channel::Email.as_str() {
        check_smtp_server(&state, &config)?;
    }
    sqlx::query(
        "UPDATE integration_accounts SET account_key = COALESCE($3, account_key), display_name = COALESCE($4, display_name),
             is_active = COALESCE($5, is_active), division_id = CASE WHEN $6 THEN $7 ELSE division_id END, config = $8,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(body.account_key.as_deref().map(|key| {
        if current.channel == Channel::Email.as_str() {
            key.to_lowercase()
        } else {
            key.to_owned()
        }
    }))
    .bind(body.display_name.as_deref())
    .bind(body.is_active)
    .bind(body.division_id.is_some())
    .bind(body.division_id.flatten())
    .bind(Value::Object(config))
    .execute(&mut *tx)
    .await
    .on_constraint("integration_accounts_channel_key", account_key_taken)?;
    if body.is_default == Some(true) {
        make_default(&mut tx, tenant, &current.channel, id).await?;
    }
    let account = load_account(&mut tx, tenant, id).await?.into_api(&state);
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "integration_account.updated",
            entity_type: "integration_account",
            entity_id: Some(id.to_string()),
            details: json!({"account_key": body.account_key, "display_name": body.display_name, "is_active": body.is_active,
                            "is_default": body.is_default, "config_keys": body.config.map(|c| c.keys().cloned().collect::<Vec<_>>())}),
        },
    )
    .await?;
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
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<AccountDeleted>> {
    let tenant = caller.tenant_id.as_uuid();
    let mut tx = state.pool.begin().await?;
    let account = load_account(&mut tx, tenant, id).await?;
    sqlx::query("DELETE FROM integration_accounts WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if account.is_default {
        let successor: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM integration_accounts WHERE tenant_id = $1 AND channel = $2 ORDER BY is_active DESC, created_at, id LIMIT 1",
        )
        .bind(tenant)
        .bind(&account.channel)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(successor) = successor {
            make_default(&mut tx, tenant, &account.channel, successor).await?;
        }
    }
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "integration_account.deleted",
            entity_type: "integration_account",
            entity_id: Some(id.to_string()),
            details: json!({"channel": account.channel, "account_key": account.account_key}),
        },
    )
    .await?;
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
    State(state): State<AppState>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<IntegrationAccount>> {
    let tenant = caller.tenant_id.as_uuid();
    let mut tx = state.pool.begin().await?;
    let account = load_account(&mut tx, tenant, id).await?;
    make_default(&mut tx, tenant, &account.channel, id).await?;
    let account = load_account(&mut tx, tenant, id).await?.into_api(&state);
    activity::record(
        &mut tx,
        &caller,
        Activity {
            action: "integration_account.set_default",
            entity_type: "integration_account",
            entity_id: Some(id.to_string()),
            details: json!({}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(account))
}
