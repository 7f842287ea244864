//! What the connect flows (WhatsApp Embedded Signup, Instagram Login, Facebook Login for
//! Messenger) share: the popup's app config, the OAuth request body, Graph failures as 502
//! `upstream_error`, the check that the app is configured, the cross-tenant `account_key` check
//! and the saving (upsert and activity log) of a connected account.

use axum::http::StatusCode;
use omnistream_commands::channels::meta::GraphError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::accounts::{account_key_taken, load_account, make_default, verify_token};
use super::accounts_dto::AccountRow;
use crate::api::activity_logs::{self as activity, Activity};
use crate::app::config::Secret;
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Result, Violations};
use crate::http::extract::{check_text, Validate};

/// 502 `upstream_error` from a failed Graph (or Instagram) API call. The message is the
/// [`GraphError`]'s, which never holds a token, secret or code.
pub(super) fn upstream(error: GraphError) -> ApiError {
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

/// 503 `service_unavailable`: the platform lacks the app settings a flow needs.
pub(super) fn not_configured(message: &'static str) -> ApiError {
    ApiError::Status {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "service_unavailable",
        message: message.into(),
    }
}

/// The app id and secret of a code exchange, or 503 `service_unavailable` saying `message` when
/// either is not configured.
pub(super) fn app_credentials<'a>(
    app_id: &'a Option<String>,
    app_secret: &'a Option<Secret>,
    message: &'static str,
) -> Result<(&'a str, &'a str)> {
    match (app_id, app_secret) {
        (Some(app_id), Some(app_secret)) => Ok((app_id, app_secret.expose())),
        _ => Err(not_configured(message)),
    }
}

/// `{app_id, config_id}` for a Facebook Login popup: WhatsApp Embedded Signup and Facebook Login
/// for Messenger.
// The schema keeps the name the OpenAPI document first published it under.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EmbeddedSignupConfig)]
pub struct FacebookLoginConfig {
    /// `META_APP_ID`; null when not configured.
    pub app_id: Option<String>,
    /// The Facebook Login for Business configuration id; null when not configured.
    pub config_id: Option<String>,
}

/// `OAuthConnectRequest` (Instagram and Messenger).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthConnectRequest {
    /// The authorization code from the OAuth popup (single use, short-lived).
    pub code: String,
    /// Exactly the `redirect_uri` of the OAuth dialog: an absolute `https://` (or `http://`) URL.
    pub redirect_uri: String,
}

impl Validate for OAuthConnectRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "code", &mut self.code, 1, 2000);
        check_text(violations, "redirect_uri", &mut self.redirect_uri, 1, 2000);
        let uri = &self.redirect_uri;
        let absolute = ["https://", "http://"].iter().any(|scheme| {
            uri.get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
                && uri.len() > scheme.len()
        });
        if !uri.is_empty() && (!absolute || uri.chars().any(char::is_whitespace)) {
            violations.add("redirect_uri", "must be an absolute http(s) URL");
        }
    }
}

/// 409 `account_key_taken` when another organization holds `account_key` on `channel`. Checked
/// before any Graph call, so a refused connect changes nothing at Meta either.
pub(super) async fn ensure_key_free(
    state: &AppState,
    tenant: Uuid,
    channel: &str,
    account_key: &str,
) -> Result<()> {
    let owner: Option<Uuid> = sqlx::query_scalar(
        "SELECT tenant_id FROM integration_accounts WHERE channel = $1 AND account_key = $2",
    )
    .bind(channel)
    .bind(account_key)
    .fetch_optional(&state.pool)
    .await?;
    if owner.is_some_and(|owner| owner != tenant) {
        return Err(ApiError::conflict(
            "account_key_taken",
            "this account is connected to another organization",
        ));
    }
    Ok(())
}

/// A connected account to save.
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
    state: &AppState,
    caller: &Caller,
    account: ConnectedAccount<'_>,
    details: impl FnOnce(bool) -> Value,
) -> Result<Uuid> {
    let (id, created) = upsert_connected(conn, state, caller.tenant_id.as_uuid(), account).await?;
    activity::record(
        conn,
        caller,
        Activity {
            action: "integration_account.connected",
            entity_type: "integration_account",
            entity_id: Some(id.to_string()),
            details: details(created),
        },
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
    state: &AppState,
    tenant: Uuid,
    account: ConnectedAccount<'_>,
) -> Result<(Uuid, bool)> {
    let sealed = Value::Object(state.channels.secrets.seal_config(tenant, &account.config));
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

/// The tenant's account `id` with its decrypted config: 404 when it is not the tenant's, 422
/// `wrong_channel_code` when it belongs to another channel than `channel`.
pub(super) async fn channel_account(
    state: &AppState,
    tenant: Uuid,
    id: Uuid,
    channel: &str,
    wrong_channel_code: &'static str,
) -> Result<(AccountRow, Map<String, Value>)> {
    let account = load_account(&mut *state.pool.acquire().await?, tenant, id).await?;
    if account.channel != channel {
        return Err(ApiError::unprocessable(
            wrong_channel_code,
            format!("this is not a {channel} account"),
        ));
    }
    let config = account.opened_config(state)?;
    Ok((account, config))
}
