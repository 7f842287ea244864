//! Integration accounts: connected numbers, pages, mailboxes and Instagram accounts.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use omnistream_domain::Channel;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ensure_division, parse_channel};
use crate::activity::{self, Activity};
use crate::app::AppState;
use crate::auth::{perm, Authorized};
use crate::error::{ApiError, ErrorResponse, Result, ResultExt, Violations};
use crate::extract::{check_text, nullable, present, IdPath, ValidJson, Validate};

/// `IntegrationAccount`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationAccount {
    pub id: Uuid,
    pub channel: String,
    /// Unique within a channel; inbound webhooks are routed by it (e.g. `wa-123456789`).
    pub account_key: String,
    pub display_name: String,
    pub is_active: bool,
    pub is_default: bool,
    /// Sensitive values masked.
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub division_id: Option<Uuid>,
    pub verify_token: String,
    /// Where the channel's webhooks must be sent.
    pub webhook_url: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct AccountRow {
    pub id: Uuid,
    /// The owner: sealed config values are bound to it.
    pub tenant_id: Uuid,
    pub channel: String,
    pub account_key: String,
    pub display_name: String,
    pub is_active: bool,
    pub is_default: bool,
    pub config: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub division_id: Option<Uuid>,
    pub verify_token: String,
}

impl AccountRow {
    pub(super) fn into_api(self, state: &AppState) -> IntegrationAccount {
        let receiver = match self.channel.as_str() {
            "instagram" => "/webhooks/instagram",
            "messenger" => "/webhooks/messenger",
            "email" => "/webhooks/email",
            _ => "/webhooks/meta",
        };
        IntegrationAccount {
            webhook_url: format!("{}{receiver}", state.config.public_base_url),
            config: state.secrets.mask_config(
                self.tenant_id,
                self.config.as_object().unwrap_or(&Map::new()),
            ),
            id: self.id,
            channel: self.channel,
            account_key: self.account_key,
            display_name: self.display_name,
            is_active: self.is_active,
            is_default: self.is_default,
            created_at: self.created_at,
            updated_at: self.updated_at,
            division_id: self.division_id,
            verify_token: self.verify_token,
        }
    }

    /// The decrypted config (for Graph calls).
    pub(super) fn opened_config(&self, state: &AppState) -> Result<Map<String, Value>> {
        state
            .secrets
            .open_config(
                self.tenant_id,
                self.config.as_object().unwrap_or(&Map::new()),
            )
            .map_err(|error| ApiError::Internal(error.into()))
    }
}

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

/// Filter of the account list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountListQuery {
    channel: Option<String>,
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

/// `CreateIntegrationAccount`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateIntegrationAccount {
    /// `whatsapp`, `instagram`, `email` or `messenger`.
    channel: String,
    /// Required except for WhatsApp (`wa-<phone_number_id>`).
    #[serde(default)]
    account_key: Option<String>,
    /// Default: the account key.
    #[serde(default)]
    display_name: Option<String>,
    /// Default false.
    #[serde(default)]
    is_active: bool,
    /// Default false; the channel's first account becomes the default anyway.
    #[serde(default)]
    is_default: bool,
    #[serde(default)]
    division_id: Option<Uuid>,
    /// WhatsApp: `phone_number_id`, `waba_id` and `access_token` are required; `pin` (two-step
    /// verification PIN) registers the number; `throughput_mps` (1..1000, default 80, Meta's tier
    /// for the number) paces outbound sends so they never trip Meta's throughput limit.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    config: Option<Map<String, Value>>,
}

/// The trimmed, non-empty string at `key`.
pub(super) fn config_text<'a>(config: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
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

/// Config values that pose as sealed ones (`enc:…`) are refused: only the server seals values,
/// and a ciphertext pasted from elsewhere must never be stored.
pub(super) fn refuse_sealed_values(config: &Map<String, Value>, violations: &mut Violations) {
    if let Some(key) = omnistream_commands::secrets::first_sealed_value(config) {
        violations.add(format!("config.{key}"), "must not start with `enc:`");
    }
}

/// `config.throughput_mps`, when given: the number's Meta throughput tier, which paces sends.
fn check_throughput(config: &Map<String, Value>, violations: &mut Violations) {
    let max = omnistream_commands::outbound::MAX_THROUGHPUT_MPS;
    match config.get("throughput_mps") {
        None | Some(Value::Null) => {}
        Some(value)
            if value
                .as_u64()
                .is_some_and(|mps| (1..=u64::from(max)).contains(&mps)) => {}
        Some(_) => violations.add(
            "config.throughput_mps",
            format!("must be an integer from 1 to {max} (messages per second)"),
        ),
    }
}

impl Validate for CreateIntegrationAccount {
    fn validate(&mut self, violations: &mut Violations) {
        let channel = self.channel.parse::<Channel>();
        if channel.is_err() {
            violations.add("channel", "must be whatsapp, instagram, email or messenger");
        }
        let config = self.config.get_or_insert_with(Map::new);
        check_throughput(config, violations);
        refuse_sealed_values(config, violations);
        if channel == Ok(Channel::Whatsapp) {
            for key in ["phone_number_id", "waba_id", "access_token"] {
                if config_text(config, key).is_none() {
                    violations.add(format!("config.{key}"), "is required for WhatsApp accounts");
                }
            }
            if let Some(phone_number_id) = config_text(config, "phone_number_id") {
                let derived = Channel::Whatsapp.account_key(phone_number_id);
                if self
                    .account_key
                    .as_deref()
                    .is_some_and(|k| k.trim() != derived)
                {
                    violations.add("account_key", format!("is derived for WhatsApp: {derived}"));
                }
                self.account_key = Some(derived);
            }
        } else if let Ok(channel @ (Channel::Messenger | Channel::Instagram)) = channel {
            // The key names the Page or professional account whose token proves it.
            let (id_key, token_key) = match channel {
                Channel::Messenger => ("page_id", "page_access_token"),
                _ => ("ig_user_id", "access_token"),
            };
            for key in [id_key, token_key] {
                if config_text(config, key).is_none() {
                    violations.add(format!("config.{key}"), "is required for this channel");
                }
            }
            if let Some(id) = config_text(config, id_key) {
                let derived = channel.account_key(id);
                if self
                    .account_key
                    .as_deref()
                    .is_some_and(|k| k.trim() != derived)
                {
                    violations.add(
                        "account_key",
                        format!("is derived for this channel: {derived}"),
                    );
                }
                self.account_key = Some(derived);
            }
        } else if channel.is_ok() {
            match &mut self.account_key {
                Some(key) => check_text(violations, "account_key", key, 1, 200),
                None => violations.add("account_key", "is required for this channel"),
            }
            if channel == Ok(Channel::Email) {
                if let Some(key) = &mut self.account_key {
                    *key = Channel::Email.account_key(key);
                }
            }
        }
        if let Some(name) = &mut self.display_name {
            check_text(violations, "display_name", name, 1, 200);
        }
    }
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
    .bind(Value::Object(state.secrets.seal_config(tenant, &config)))
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

/// `UpdateIntegrationAccount`: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateIntegrationAccount {
    #[serde(default, deserialize_with = "present")]
    account_key: Option<String>,
    #[serde(default, deserialize_with = "present")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    is_active: Option<bool>,
    /// `true` makes it the default; `false` on the default is refused (409 `default_account_required`).
    #[serde(default, deserialize_with = "present")]
    is_default: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    division_id: Option<Option<Uuid>>,
    /// Merged; masked values are not overwritten; `null` removes a key.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    config: Option<Map<String, Value>>,
}

impl Validate for UpdateIntegrationAccount {
    fn validate(&mut self, violations: &mut Violations) {
        if let Some(key) = &mut self.account_key {
            check_text(violations, "account_key", key, 1, 200);
        }
        if let Some(name) = &mut self.display_name {
            check_text(violations, "display_name", name, 1, 200);
        }
        if let Some(config) = &self.config {
            check_throughput(config, violations);
            refuse_sealed_values(config, violations);
        }
    }
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
    let config = omnistream_commands::secrets::merge_config(
        &state.secrets,
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

/// `{message, id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountDeleted {
    pub message: String,
    pub id: Uuid,
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
