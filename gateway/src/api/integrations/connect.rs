//! What the connect flows (WhatsApp Embedded Signup, Instagram Login, Facebook Login for
//! Messenger) share: the popup's app config, the OAuth request body, Graph failures as 502
//! `upstream_error`, the check that the app is configured, and reading a connected account's
//! decrypted config. The cross-tenant `account_key` check and the saving (upsert and activity
//! row) of a connected account are SQL, in [`super::store`].

use axum::http::StatusCode;
use omnistream_commands::channels::meta::GraphError;
use omnistream_commands::infra::secrets::SecretBox;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::dto::AccountRow;
use super::store::load_account;
use crate::app::config::Secret;
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

/// The tenant's account `id` with its decrypted config: 404 when it is not the tenant's, 422
/// `wrong_channel_code` when it belongs to another channel than `channel`.
pub(super) async fn channel_account(
    pool: &PgPool,
    secrets: &SecretBox,
    tenant: Uuid,
    id: Uuid,
    channel: &str,
    wrong_channel_code: &'static str,
) -> Result<(AccountRow, Map<String, Value>)> {
    let account = load_account(&mut *pool.acquire().await?, tenant, id).await?;
    if account.channel != channel {
        return Err(ApiError::unprocessable(
            wrong_channel_code,
            format!("this is not a {channel} account"),
        ));
    }
    let config = account.opened_config(secrets)?;
    Ok((account, config))
}
