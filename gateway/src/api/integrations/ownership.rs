//! Proof that an account key is the tenant's to claim, before it is saved: inbound webhooks are
//! routed by key, so a key claimed first-come would hand another business's customers to whoever
//! typed it.
//!
//! - Messenger `fb-<page_id>`: the Page access token must read that Page
//!   (`GET /{page_id}?fields=id,name`).
//! - Instagram `ig-<ig_user_id>`: the token must belong to that professional account
//!   (`GET /me?fields=user_id,username` on the Instagram Login API).
//! - Email: mail for `local+tag@domain` belongs to the owner of `local@domain`, so a tagged key
//!   whose base address is another tenant's is refused, and so is a base address one of whose
//!   tagged forms another tenant holds.

use omnistream_commands::channels::email::reply_address::untagged;
use omnistream_commands::channels::meta::GraphError;
use omnistream_domain::Channel;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::connect::upstream;
use super::dto::config_text;
use super::store::{self, account_key_taken};
use crate::app::ChannelClients;
use crate::http::error::{ApiError, Result};

/// Confirms with Meta that a Messenger or Instagram account's token belongs to its key's Page or
/// professional account; other channels need no confirmation here.
pub(super) async fn confirm_with_provider(
    channels: &ChannelClients,
    channel: Channel,
    config: &Map<String, Value>,
) -> Result<()> {
    match channel {
        Channel::Messenger => {
            let (Some(page_id), Some(token)) = (
                config_text(config, "page_id"),
                config_text(config, "page_access_token"),
            ) else {
                return Ok(());
            };
            let page = channels
                .graph
                .page_profile(token, page_id)
                .await
                .map_err(|error| refused_by_meta(error, "Page"))?;
            if page.id != page_id {
                return Err(not_confirmed(format!(
                    "the Page access token reads Page {}, not {page_id}",
                    page.id
                )));
            }
            Ok(())
        }
        Channel::Instagram => {
            let (Some(user_id), Some(token)) = (
                config_text(config, "ig_user_id"),
                config_text(config, "access_token"),
            ) else {
                return Ok(());
            };
            let profile = channels
                .instagram
                .instagram_profile(token)
                .await
                .map_err(|error| refused_by_meta(error, "Instagram account"))?;
            if profile.user_id != user_id {
                return Err(not_confirmed(format!(
                    "the access token belongs to Instagram account {}, not {user_id}",
                    profile.user_id
                )));
            }
            Ok(())
        }
        Channel::Whatsapp | Channel::Email => Ok(()),
    }
}

/// 409 `account_key_taken` when `key` (an email account's lower-cased address) or its base
/// address, or a tagged form of it, belongs to another tenant.
pub(super) async fn ensure_email_key_free(pool: &PgPool, tenant: Uuid, key: &str) -> Result<()> {
    let base = untagged(key).unwrap_or_else(|| key.to_owned());
    let Some((local, domain)) = base.rsplit_once('@') else {
        return Ok(());
    };
    if store::email_key_clash(pool, tenant, &base, local, domain).await? {
        return Err(account_key_taken());
    }
    Ok(())
}

/// 422 `account_not_confirmed` with Meta's reason when Meta refused the token; 502 when Meta
/// could not be asked.
fn refused_by_meta(error: GraphError, what: &str) -> ApiError {
    match error {
        GraphError::Api { message, .. } => {
            not_confirmed(format!("Meta did not confirm the {what}: {message}"))
        }
        transport @ GraphError::Transport(_) => upstream(transport),
    }
}

fn not_confirmed(message: String) -> ApiError {
    ApiError::unprocessable("account_not_confirmed", message)
}
