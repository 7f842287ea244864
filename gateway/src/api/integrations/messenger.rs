//! Messenger onboarding with Facebook Login: the app ids for the popup, the connect that lists the
//! user's Pages, the selection that turns Pages into `fb-<page_id>` accounts, the disconnect, and
//! the Page's persistent menu.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use omnistream_commands::channels::messenger::page::ManagedPage;
use omnistream_domain::Channel;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::connect::{
    app_credentials, channel_account, upstream, FacebookLoginConfig, OAuthConnectRequest,
};
use super::dto::{config_text, AccountRow};
use super::store::{self, ConnectedAccount};
use crate::app::config::Config;
use crate::app::ChannelClients;
use crate::http::auth::{perm, Authorized};
use crate::http::error::{ApiError, ErrorResponse, Result, Violations};
use crate::http::extract::{check_optional_text, check_text, IdPath, ValidJson, Validate};

/// At most this many Pages per `POST /api/integrations/messenger/pages`.
const MAX_SELECTED_PAGES: usize = 50;

/// Get Messenger OAuth app config
#[utoipa::path(
    get, path = "/api/integrations/messenger/auth-config", tag = "Integrations",
    responses((status = 200, description = "META_APP_ID and the Facebook Login for Business configuration (MESSENGER_CONFIG_ID, else META_CONFIG_ID); null when not configured", body = FacebookLoginConfig),
              (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn auth_config(
    State(config): State<Arc<Config>>,
    _caller: Authorized<perm::IntegrationsManage>,
) -> Json<FacebookLoginConfig> {
    Json(FacebookLoginConfig {
        app_id: config.meta_app_id.clone(),
        config_id: config
            .messenger_config_id
            .clone()
            .or_else(|| config.meta_config_id.clone()),
    })
}

/// A Facebook Page the user manages.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessengerPage {
    pub page_id: String,
    pub page_name: String,
}

/// `MessengerConnectResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessengerConnectResponse {
    /// Every Page the user manages (possibly none).
    pub pages: Vec<MessengerPage>,
    /// The long-lived user token; pass it back to `POST /api/integrations/messenger/pages`.
    pub user_token: String,
}

/// Connect Messenger via Facebook Login OAuth
#[utoipa::path(
    post, path = "/api/integrations/messenger/connect", tag = "Integrations", request_body = OAuthConnectRequest,
    responses((status = 200, description = "The code is exchanged for a user token, that for a long-lived one, and the user's Pages are listed \
(every result page of `/me/accounts`, up to 1,000 Pages). Nothing is saved; next: `POST /api/integrations/messenger/pages`.", body = MessengerConnectResponse),
              (status = 400, description = "validation_error: code and an absolute http(s) redirect_uri are required", body = ErrorResponse),
              (status = 403, body = ErrorResponse),
              (status = 502, description = "upstream_error: Meta refused a step (bad or used code, redirect_uri mismatch…)", body = ErrorResponse),
              (status = 503, description = "META_APP_ID / META_APP_SECRET not configured", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn connect(
    State(config): State<Arc<Config>>,
    State(channels): State<ChannelClients>,
    _caller: Authorized<perm::IntegrationsManage>,
    ValidJson(body): ValidJson<OAuthConnectRequest>,
) -> Result<Json<MessengerConnectResponse>> {
    let (app_id, app_secret) = app_credentials(
        &config.meta_app_id,
        &config.meta_app_secret,
        "Facebook Login needs META_APP_ID and META_APP_SECRET",
    )?;
    let short = channels
        .graph
        .login_code_token(app_id, app_secret, &body.redirect_uri, &body.code)
        .await
        .map_err(upstream)?;
    let user_token = channels
        .graph
        .long_lived_user_token(app_id, app_secret, &short)
        .await
        .map_err(upstream)?;
    let pages = channels
        .graph
        .managed_pages(&user_token)
        .await
        .map_err(upstream)?;
    Ok(Json(MessengerConnectResponse {
        pages: pages
            .into_iter()
            .map(|ManagedPage { id, name }| MessengerPage {
                page_id: id,
                page_name: name,
            })
            .collect(),
        user_token,
    }))
}

/// A Page chosen for Messenger.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectedPage {
    /// Meta's numeric Page id.
    page_id: String,
    /// The name shown in the list; the name Meta reports when the Page token is fetched wins.
    #[serde(default)]
    page_name: Option<String>,
}

/// `MessengerPagesRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessengerPagesRequest {
    /// 1 to 50 distinct Pages.
    pages: Vec<SelectedPage>,
    /// The long-lived user token from `POST /api/integrations/messenger/connect`.
    user_token: String,
}

impl Validate for MessengerPagesRequest {
    fn validate(&mut self, violations: &mut Violations) {
        check_text(violations, "user_token", &mut self.user_token, 1, 2000);
        if self.pages.is_empty() {
            violations.add("pages", "must not be empty");
        } else if self.pages.len() > MAX_SELECTED_PAGES {
            violations.add(
                "pages",
                format!("must have at most {MAX_SELECTED_PAGES} pages"),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (i, page) in self.pages.iter_mut().enumerate() {
            let field = format!("pages[{i}].page_id");
            check_text(violations, &field, &mut page.page_id, 1, 64);
            if !page.page_id.chars().all(|c| c.is_ascii_digit()) {
                violations.add(&field, "must be Meta's numeric Page id");
            } else if !seen.insert(page.page_id.clone()) {
                violations.add(&field, "is listed twice");
            }
            check_optional_text(
                violations,
                &format!("pages[{i}].page_name"),
                &mut page.page_name,
                200,
            );
        }
    }
}

/// One Page connected.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessengerConnected {
    /// `fb-<page_id>`.
    pub account_key: String,
    pub page_name: String,
    pub page_id: String,
}

/// `MessengerPagesResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessengerPagesResponse {
    pub success: bool,
    /// In the order of the request.
    pub connected: Vec<MessengerConnected>,
}

/// Subscribe selected Facebook Pages to Messenger webhooks
#[utoipa::path(
    post, path = "/api/integrations/messenger/pages", tag = "Integrations", request_body = MessengerPagesRequest,
    responses((status = 200, description = "For each Page: its Page access token is fetched with the user token, the Page is subscribed to the messaging webhooks \
with it, and the `fb-<page_id>` account is upserted active (config `page_id`, `page_name`, `page_access_token`, encrypted and shown masked). An existing account \
of the Page is updated and reactivated (its display name is kept); the channel's first account becomes the default. All Pages are saved together after every \
Graph call succeeded: one refused Page saves none (Pages subscribed before it stay subscribed at Meta; repeating the request is safe).", body = MessengerPagesResponse),
              (status = 400, description = "validation_error: 1 to 50 distinct numeric page ids and a user_token", body = ErrorResponse),
              (status = 403, body = ErrorResponse),
              (status = 409, description = "account_key_taken: a Page is connected to another organization", body = ErrorResponse),
              (status = 502, description = "upstream_error: Meta refused (user token expired, Page not managed by the user…); nothing is saved", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn connect_pages(
    State(pool): State<PgPool>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    ValidJson(body): ValidJson<MessengerPagesRequest>,
) -> Result<Json<MessengerPagesResponse>> {
    let tenant = caller.tenant_id.as_uuid();
    for page in &body.pages {
        let account_key = Channel::Messenger.account_key(&page.page_id);
        store::ensure_key_free(&pool, tenant, "messenger", &account_key).await?;
    }
    let mut ready = Vec::with_capacity(body.pages.len());
    for page in &body.pages {
        let access = channels
            .graph
            .page_access(&body.user_token, &page.page_id)
            .await
            .map_err(upstream)?;
        let name = access
            .name
            .or_else(|| page.page_name.clone())
            .unwrap_or_else(|| page.page_id.clone());
        ready.push((page.page_id.clone(), name, access.access_token));
    }
    // The keys are saved (and so reserved) before any Page is subscribed at Meta; a refused
    // subscription rolls every one of them back.
    let mut tx = pool.begin().await?;
    let mut connected = Vec::with_capacity(ready.len());
    let mut subscriptions = Vec::with_capacity(ready.len());
    for (page_id, page_name, token) in ready {
        subscriptions.push((page_id.clone(), token.clone()));
        let account_key = Channel::Messenger.account_key(&page_id);
        let mut config = Map::new();
        config.insert("page_id".into(), page_id.clone().into());
        config.insert("page_name".into(), page_name.clone().into());
        config.insert("page_access_token".into(), token.into());
        store::save_connected(
            &mut tx,
            &channels.secrets,
            &caller,
            ConnectedAccount {
                channel: "messenger",
                account_key: &account_key,
                display_name: &page_name,
                config,
            },
            |created| json!({"channel": "messenger", "account_key": account_key, "page_id": page_id, "created": created}),
        )
        .await?;
        connected.push(MessengerConnected {
            account_key,
            page_name,
            page_id,
        });
    }
    for (page_id, token) in &subscriptions {
        channels
            .graph
            .subscribe_page(token, page_id)
            .await
            .map_err(upstream)?;
    }
    tx.commit().await?;
    Ok(Json(MessengerPagesResponse {
        success: true,
        connected,
    }))
}

/// The tenant's Messenger account `id` with its Page id and Page access token: 404, 422
/// `not_messenger_account`, or 422 `incomplete_account` without a `page_id` or token.
async fn page_account(
    pool: &PgPool,
    channels: &ChannelClients,
    tenant: Uuid,
    id: Uuid,
) -> Result<(AccountRow, String, String)> {
    let (account, config) = channel_account(
        pool,
        &channels.secrets,
        tenant,
        id,
        "messenger",
        "not_messenger_account",
    )
    .await?;
    let (Some(page_id), Some(token)) = (
        config_text(&config, "page_id"),
        config_text(&config, "page_access_token"),
    ) else {
        return Err(ApiError::unprocessable(
            "incomplete_account",
            "the account has no page_id or page_access_token: connect the Page again",
        ));
    };
    let (page_id, token) = (page_id.to_owned(), token.to_owned());
    Ok((account, page_id, token))
}

/// `{success, id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessengerDisconnected {
    pub success: bool,
    pub id: Uuid,
}

/// Disconnect a Messenger page
#[utoipa::path(
    post, path = "/api/integrations/messenger/disconnect/{account_id}", tag = "Integrations", params(("account_id" = Uuid, Path)),
    responses((status = 200, description = "The Page's webhook subscription is removed (`DELETE /{page_id}/subscribed_apps` with the Page token), then the account \
is deactivated (kept, with its default flag). Repeating it is harmless.", body = MessengerDisconnected),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "not_messenger_account, or incomplete_account (no page_id / page_access_token)", body = ErrorResponse),
              (status = 502, description = "upstream_error: Meta refused; the account is unchanged", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn disconnect(
    State(pool): State<PgPool>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<MessengerDisconnected>> {
    let tenant = caller.tenant_id.as_uuid();
    let (account, page_id, token) = page_account(&pool, &channels, tenant, id).await?;
    channels
        .graph
        .unsubscribe_page(&token, &page_id)
        .await
        .map_err(upstream)?;
    let mut tx = pool.begin().await?;
    store::deactivate_account(&mut tx, tenant, id).await?;
    let details =
        json!({"channel": "messenger", "account_key": account.account_key, "page_id": page_id});
    store::record_account(
        &mut tx,
        &caller,
        "integration_account.disconnected",
        id,
        details,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(MessengerDisconnected { success: true, id }))
}

/// Get Messenger persistent menu
#[utoipa::path(
    get, path = "/api/integrations/messenger/{account_id}/persistent-menu", tag = "Integrations", params(("account_id" = Uuid, Path)),
    responses((status = 200, description = "Meta's answer to `GET /me/messenger_profile?fields=persistent_menu` (with the Page token) as is, \
e.g. `{\"data\":[{\"persistent_menu\":[…]}]}`; `{}` when the Page has no persistent menu (Meta answers `{\"data\":[]}`)", body = Object),
              (status = 400, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "not_messenger_account or incomplete_account", body = ErrorResponse),
              (status = 502, description = "upstream_error", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn get_persistent_menu(
    State(pool): State<PgPool>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
) -> Result<Json<Value>> {
    let (_, _, token) = page_account(&pool, &channels, caller.tenant_id.as_uuid(), id).await?;
    let profile = channels
        .graph
        .persistent_menu(&token)
        .await
        .map_err(upstream)?;
    let none = match profile.get("data") {
        Some(Value::Array(data)) => data.is_empty(),
        _ => !profile.is_object(),
    };
    Ok(Json(if none { json!({}) } else { profile }))
}

/// `PersistentMenuRequest`: exactly one of a menu to set or `delete: true`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersistentMenuRequest {
    /// Meta's `persistent_menu` array: one object per locale, each with a `locale` (`default`
    /// for the fallback) and its `call_to_actions`. Required unless `delete` is true.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    persistent_menu: Option<Vec<Value>>,
    /// True: delete the persistent menu instead (then `persistent_menu` must be absent).
    #[serde(default)]
    delete: bool,
}

impl Validate for PersistentMenuRequest {
    fn validate(&mut self, violations: &mut Violations) {
        match (&self.persistent_menu, self.delete) {
            (Some(_), true) => violations.add(
                "persistent_menu",
                "must be absent when delete is true (set a menu or delete it, not both)",
            ),
            (None, false) => violations.add("persistent_menu", "is required unless delete is true"),
            (Some(menu), false) if menu.is_empty() || menu.len() > 50 => {
                violations.add("persistent_menu", "must hold 1 to 50 locale entries")
            }
            (Some(menu), false) => {
                for (i, entry) in menu.iter().enumerate() {
                    let locale = entry.get("locale").and_then(Value::as_str);
                    if !entry.is_object() || locale.is_none_or(|l| l.trim().is_empty()) {
                        violations.add(
                            format!("persistent_menu[{i}]"),
                            "must be an object with a locale",
                        );
                    }
                }
            }
            (None, true) => {}
        }
    }
}

/// `{success, deleted}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersistentMenuResult {
    pub success: bool,
    /// True when the menu was deleted, false when it was set.
    pub deleted: bool,
}

/// Set or delete Messenger persistent menu
#[utoipa::path(
    post, path = "/api/integrations/messenger/{account_id}/persistent-menu", tag = "Integrations", params(("account_id" = Uuid, Path)),
    request_body = PersistentMenuRequest,
    responses((status = 200, description = "`POST /me/messenger_profile` `{persistent_menu}` or, with `delete: true`, `DELETE /me/messenger_profile` \
`{\"fields\":[\"persistent_menu\"]}`, with the Page token. The menu's content is checked by Meta (a refusal is 502).", body = PersistentMenuResult),
              (status = 400, description = "validation_error: neither or both of persistent_menu and delete, or a malformed menu", body = ErrorResponse),
              (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
              (status = 422, description = "not_messenger_account or incomplete_account", body = ErrorResponse),
              (status = 502, description = "upstream_error", body = ErrorResponse)),
    security(("bearer" = []), ("api_key" = []), ("cookie" = []))
)]
pub(super) async fn set_persistent_menu(
    State(pool): State<PgPool>,
    State(channels): State<ChannelClients>,
    Authorized { caller, .. }: Authorized<perm::IntegrationsManage>,
    IdPath(id): IdPath,
    ValidJson(body): ValidJson<PersistentMenuRequest>,
) -> Result<Json<PersistentMenuResult>> {
    let (account, _, token) =
        page_account(&pool, &channels, caller.tenant_id.as_uuid(), id).await?;
    let action = match &body.persistent_menu {
        Some(menu) => {
            channels
                .graph
                .set_persistent_menu(&token, menu)
                .await
                .map_err(upstream)?;
            "integration_account.persistent_menu_set"
        }
        None => {
            channels
                .graph
                .delete_persistent_menu(&token)
                .await
                .map_err(upstream)?;
            "integration_account.persistent_menu_deleted"
        }
    };
    let mut conn = pool.acquire().await?;
    let details = json!({"channel": "messenger", "account_key": account.account_key,
                         "locales": body.persistent_menu.as_ref().map(|m| m.len())});
    store::record_account(&mut conn, &caller, action, id, details).await?;
    Ok(Json(PersistentMenuResult {
        success: true,
        deleted: body.delete,
    }))
}
