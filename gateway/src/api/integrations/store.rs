//! The SQL of the Integrations tag: the `integrations` row of each channel's settings, the
//! `integration_accounts` rows (created, updated, connected by an onboarding flow, made default,
//! deleted), and the activity row written in the same transaction as each change.

use omnistream_commands::infra::secrets::SecretBox;
use omnistream_domain::Channel;
use rand::RngCore;
use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::dto::{AccountRow, CreateIntegrationAccount, IntegrationRow, UpdateIntegrationAccount};
use crate::api::activity_logs::{self as activity, Activity};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Result, ResultExt};

/// Columns of [`IntegrationRow`].
const INTEGRATION_COLUMNS: &str =
    "id, tenant_id, channel, is_active, config, created_at, updated_at, division_id";

/// Columns of [`AccountRow`].
const ACCOUNT_COLUMNS: &str =
    "id, tenant_id, channel, account_key, display_name, is_active, is_default, config, created_at, updated_at, division_id, verify_token";

/// 409 `account_key_taken`.
pub(super) fn account_key_taken() -> ApiError {
    ApiError::conflict(
        "account_key_taken",
        "another account already uses this account_key",
    )
}

/// 422 `invalid_division` unless `division` is one of the tenant's.
pub(super) async fn ensure_division(
    pool: &PgPool,
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
    .fetch_one(pool)
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

// ---- Channel settings ----

/// The tenant's channel settings, in channel order.
pub(super) async fn list_integrations(pool: &PgPool, tenant: Uuid) -> Result<Vec<IntegrationRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1
         ORDER BY array_position(ARRAY['whatsapp', 'instagram', 'email', 'messenger'], channel)"
    ))
    .bind(tenant)
    .fetch_all(pool)
    .await?)
}

/// The tenant's settings of `channel`, if configured.
pub(super) async fn find_integration(
    pool: &PgPool,
    tenant: Uuid,
    channel: Channel,
) -> Result<Option<IntegrationRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 AND channel = $2"
    ))
    .bind(tenant)
    .bind(channel.as_str())
    .fetch_optional(pool)
    .await?)
}

/// The stored config of the tenant's settings of `channel` (empty when not configured), the
/// row locked until the transaction ends so two merges cannot lose each other's keys.
pub(super) async fn lock_integration_config(
    conn: &mut PgConnection,
    tenant: Uuid,
    channel: Channel,
) -> Result<Map<String, Value>> {
    let stored: Option<IntegrationRow> = sqlx::query_as(&format!(
        "SELECT {INTEGRATION_COLUMNS} FROM integrations WHERE tenant_id = $1 AND channel = $2 FOR UPDATE"
    ))
    .bind(tenant)
    .bind(channel.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(stored
        .and_then(|r| r.config.as_object().cloned())
        .unwrap_or_default())
}

/// Creates or updates the tenant's settings of `channel`: `config` (already merged and sealed)
/// replaces the stored one; `is_active` and `division_id` change when given (`Some(None)`
/// clears the division).
pub(super) async fn upsert_integration(
    conn: &mut PgConnection,
    tenant: Uuid,
    channel: Channel,
    is_active: Option<bool>,
    division_id: Option<Option<Uuid>>,
    config: Map<String, Value>,
) -> Result<IntegrationRow> {
    sqlx::query_as(&format!(
        "INSERT INTO integrations (id, tenant_id, channel, is_active, config, division_id) VALUES ($1, $2, $3, COALESCE($4, false), $5, $6)
         ON CONFLICT (tenant_id, channel) DO UPDATE SET is_active = COALESCE($4, integrations.is_active), config = $5,
             division_id = CASE WHEN $7 THEN $6 ELSE integrations.division_id END, updated_at = now()
         RETURNING {INTEGRATION_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(channel.as_str())
    .bind(is_active)
    .bind(Value::Object(config))
    .bind(division_id.flatten())
    .bind(division_id.is_some())
    .fetch_one(conn)
    .await
    .on_constraint("integrations_division_fkey", || {
        ApiError::unprocessable("invalid_division", "unknown division")
    })
}

/// Deletes the tenant's settings of `channel`; returns their id, `None` when not configured.
pub(super) async fn delete_integration(
    conn: &mut PgConnection,
    tenant: Uuid,
    channel: Channel,
) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "DELETE FROM integrations WHERE tenant_id = $1 AND channel = $2 RETURNING id",
    )
    .bind(tenant)
    .bind(channel.as_str())
    .fetch_optional(conn)
    .await?)
}

// ---- Accounts ----

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

/// The tenant's accounts (of `channel` only, when given): by channel, then default first, then
/// oldest first.
pub(super) async fn list_accounts(
    pool: &PgPool,
    tenant: Uuid,
    channel: Option<Channel>,
) -> Result<Vec<AccountRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM integration_accounts WHERE tenant_id = $1 AND ($2::text IS NULL OR channel = $2)
         ORDER BY array_position(ARRAY['whatsapp', 'instagram', 'email', 'messenger'], channel), is_default DESC, created_at, id"
    ))
    .bind(tenant)
    .bind(channel.map(|c| c.as_str()))
    .fetch_all(pool)
    .await?)
}

/// Whether any organization's account already uses `account_key` on `channel`.
pub(super) async fn account_key_in_use(
    pool: &PgPool,
    channel: Channel,
    account_key: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM integration_accounts WHERE channel = $1 AND account_key = $2)",
    )
    .bind(channel.as_str())
    .bind(account_key)
    .fetch_one(pool)
    .await?)
}

/// 409 `account_key_taken` when another organization holds `account_key` on `channel`.
/// Checked before any Graph call, so a refused connect changes nothing at Meta either.
pub(super) async fn ensure_key_free(
    pool: &PgPool,
    tenant: Uuid,
    channel: &str,
    account_key: &str,
) -> Result<()> {
    let owner: Option<Uuid> = sqlx::query_scalar(
        "SELECT tenant_id FROM integration_accounts WHERE channel = $1 AND account_key = $2",
    )
    .bind(channel)
    .bind(account_key)
    .fetch_optional(pool)
    .await?;
    if owner.is_some_and(|owner| owner != tenant) {
        return Err(ApiError::conflict(
            "account_key_taken",
            "this account is connected to another organization",
        ));
    }
    Ok(())
}

/// Whether another tenant's email account is `base`, or a tagged form of it
/// (`<local>+…@<domain>`).
pub(super) async fn email_key_clash(
    pool: &PgPool,
    tenant: Uuid,
    base: &str,
    local: &str,
    domain: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM integration_accounts
           WHERE channel = 'email' AND tenant_id <> $1
             AND (lower(account_key) = $2
                  OR (starts_with(lower(account_key), $3) AND split_part(lower(account_key), '@', 2) = $4)))",
    )
    .bind(tenant)
    .bind(base)
    .bind(format!("{local}+"))
    .bind(domain)
    .fetch_one(pool)
    .await?)
}

/// 32 random hex characters.
fn verify_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Makes account `id` (of `channel`) the channel's only default.
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

/// Inserts an account of `channel` with `account_key` and `config` (plain; sealed here) and
/// returns its id; it becomes the channel's default when `body.is_default` or when it is the
/// channel's first. 409 `account_key_taken`.
pub(super) async fn insert_account(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    tenant: Uuid,
    channel: Channel,
    account_key: &str,
    body: &CreateIntegrationAccount,
    config: &Map<String, Value>,
) -> Result<Uuid> {
    let first: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM integration_accounts WHERE tenant_id = $1 AND channel = $2)")
        .bind(tenant)
        .bind(channel.as_str())
        .fetch_one(&mut *conn)
        .await?;
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO integration_accounts (id, tenant_id, channel, account_key, display_name, is_active, is_default, division_id, config, verify_token)
         VALUES ($1, $2, $3, $4, $5, $6, false, $7, $8, $9)",
    )
    .bind(id)
    .bind(tenant)
    .bind(channel.as_str())
    .bind(account_key)
    .bind(body.display_name.clone().unwrap_or_else(|| account_key.to_owned()))
    .bind(body.is_active)
    .bind(body.division_id)
    .bind(Value::Object(secrets.seal_config(tenant, config)))
    .bind(verify_token())
    .execute(&mut *conn)
    .await
    .on_constraint("integration_accounts_channel_key", account_key_taken)?;
    if body.is_default || first {
        make_default(conn, tenant, channel.as_str(), id).await?;
    }
    Ok(id)
}

/// Writes the given fields of `body` to account `id`: `account_key` (already normalised for
/// the channel) and `config` (already merged and sealed) replace the stored ones; `is_default:
/// true` makes it the channel's default. 409 `account_key_taken`.
pub(super) async fn update_account(
    conn: &mut PgConnection,
    tenant: Uuid,
    current: &AccountRow,
    body: &UpdateIntegrationAccount,
    account_key: Option<String>,
    config: Map<String, Value>,
) -> Result<()> {
    sqlx::query(
        "UPDATE integration_accounts SET account_key = COALESCE($3, account_key), display_name = COALESCE($4, display_name),
             is_active = COALESCE($5, is_active), division_id = CASE WHEN $6 THEN $7 ELSE division_id END, config = $8,
             updated_at = now()
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(current.id)
    .bind(account_key)
    .bind(body.display_name.as_deref())
    .bind(body.is_active)
    .bind(body.division_id.is_some())
    .bind(body.division_id.flatten())
    .bind(Value::Object(config))
    .execute(&mut *conn)
    .await
    .on_constraint("integration_accounts_channel_key", account_key_taken)?;
    if body.is_default == Some(true) {
        make_default(conn, tenant, &current.channel, current.id).await?;
    }
    Ok(())
}

/// Deletes `account`; a deleted default is replaced by the channel's oldest active account,
/// else its oldest.
pub(super) async fn delete_account(
    conn: &mut PgConnection,
    tenant: Uuid,
    account: &AccountRow,
) -> Result<()> {
    sqlx::query("DELETE FROM integration_accounts WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(account.id)
        .execute(&mut *conn)
        .await?;
    if account.is_default {
        let successor: Option<Uuid> = sqlx::query_scalar(
            "SELECT id FROM integration_accounts WHERE tenant_id = $1 AND channel = $2 ORDER BY is_active DESC, created_at, id LIMIT 1",
        )
        .bind(tenant)
        .bind(&account.channel)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(successor) = successor {
            make_default(conn, tenant, &account.channel, successor).await?;
        }
    }
    Ok(())
}

/// Deactivates account `id` (it keeps its default flag).
pub(super) async fn deactivate_account(
    conn: &mut PgConnection,
    tenant: Uuid,
    id: Uuid,
) -> Result<()> {
    sqlx::query("UPDATE integration_accounts SET is_active = false, updated_at = now() WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// An account an onboarding flow connected, to save.
pub(super) struct ConnectedAccount<'a> {
    pub channel: &'a str,
    pub account_key: &'a str,
    /// Used when the account is created; an existing account keeps its display name.
    pub display_name: &'a str,
    /// Plain values; sensitive ones are sealed here. Merged over an existing account's config.
    pub config: Map<String, Value>,
}

/// Saves `account` for the caller's tenant ([`upsert_connected`]) and records
/// `integration_account.connected` with `details(created)`, on `conn` (the connect's
/// transaction). Returns the account's id.
pub(super) async fn save_connected(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    caller: &Caller,
    account: ConnectedAccount<'_>,
    details: impl FnOnce(bool) -> Value,
) -> Result<Uuid> {
    let (id, created) =
        upsert_connected(conn, secrets, caller.tenant_id.as_uuid(), account).await?;
    record_account(
        conn,
        caller,
        "integration_account.connected",
        id,
        details(created),
    )
    .await?;
    Ok(id)
}

/// Creates the account, active, or updates and reactivates the tenant's existing one with the
/// same key (its config merged with the new values). The channel's first account becomes its
/// default. Returns the id and whether it was created. One statement decides, so two connects of
/// the same account cannot create it twice; another organization's account is 409.
async fn upsert_connected(
    conn: &mut PgConnection,
    secrets: &SecretBox,
    tenant: Uuid,
    account: ConnectedAccount<'_>,
) -> Result<(Uuid, bool)> {
    let sealed = Value::Object(secrets.seal_config(tenant, &account.config));
    let row: Option<(Uuid, bool)> = sqlx::query_as(
        "INSERT INTO integration_accounts (id, tenant_id, channel, account_key, display_name, is_active, config, verify_token)
         VALUES ($1, $2, $3, $4, $5, true, $6, $7)
         ON CONFLICT ON CONSTRAINT integration_accounts_channel_key DO UPDATE
             SET config = integration_accounts.config || EXCLUDED.config, is_active = true, updated_at = now()
             WHERE integration_accounts.tenant_id = EXCLUDED.tenant_id
         RETURNING id, (xmax = 0) AS created",
    )
    .bind(Uuid::new_v4())
    .bind(tenant)
    .bind(account.channel)
    .bind(account.account_key)
    .bind(account.display_name)
    .bind(&sealed)
    .bind(verify_token())
    .fetch_optional(&mut *conn)
    .await?;
    let (id, created) = row.ok_or_else(account_key_taken)?;
    let has_default: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM integration_accounts WHERE tenant_id = $1 AND channel = $2 AND is_default)",
    )
    .bind(tenant)
    .bind(account.channel)
    .fetch_one(&mut *conn)
    .await?;
    if !has_default {
        make_default(conn, tenant, account.channel, id).await?;
    }
    Ok((id, created))
}

// ---- Activity ----

/// Writes the activity row of a change to the channel settings `id`.
pub(super) async fn record_integration(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    id: Uuid,
    details: Value,
) -> Result<()> {
    record(conn, caller, action, "integration", id, details).await
}

/// Writes the activity row of a change to account `id`.
pub(super) async fn record_account(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    id: Uuid,
    details: Value,
) -> Result<()> {
    record(conn, caller, action, "integration_account", id, details).await
}

async fn record(
    conn: &mut PgConnection,
    caller: &Caller,
    action: &str,
    entity_type: &str,
    id: Uuid,
    details: Value,
) -> Result<()> {
    activity::record(
        conn,
        caller,
        Activity {
            action,
            entity_type,
            entity_id: Some(id.to_string()),
            details,
        },
    )
    .await?;
    Ok(())
}
