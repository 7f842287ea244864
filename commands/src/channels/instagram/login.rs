//! Instagram API with Instagram Login: the OAuth code exchange (a form POST to
//! `https://api.instagram.com`), the long-lived token, the professional account's profile and its
//! webhook subscription (on `https://graph.instagram.com`).
//!
//! The code exchange runs on a [`GraphClient`] made for the OAuth base URL; the other calls on
//! the one for the Instagram Graph base URL. Tokens, secrets and codes go into form bodies,
//! queries or the `Authorization` header only, never into errors or logs.

use chrono::{DateTime, Duration, Utc};
use reqwest::Method;
use serde_json::Value;

use crate::channels::meta::login::{confirmed, optional_text, required_text};
use crate::channels::meta::{GraphClient, GraphError};

/// The webhook fields the Instagram channel needs.
pub const INSTAGRAM_SUBSCRIBED_FIELDS: &str =
    "messages,messaging_postbacks,messaging_seen,message_reactions";

/// Fields read by [`GraphClient::instagram_profile`].
const PROFILE_FIELDS: &str = "user_id,username,name,profile_picture_url";

/// The short-lived token of an Instagram Login code exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstagramCodeToken {
    /// Short-lived (about 1 hour) Instagram User access token.
    pub access_token: String,
    /// The app-scoped user id Meta returned, if any (not the id webhooks carry).
    pub user_id: Option<String>,
    /// The permissions granted, e.g. `instagram_business_manage_messages`.
    pub permissions: Vec<String>,
}

/// A long-lived Instagram User access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongLivedToken {
    /// The token (about 60 days).
    pub access_token: String,
    /// Seconds until it expires, when Meta said.
    pub expires_in: Option<i64>,
}

impl LongLivedToken {
    /// `{"access_token","expires_in"}`, as both the exchange and the refresh answer.
    fn from_answer(response: &Value) -> Result<LongLivedToken, GraphError> {
        Ok(LongLivedToken {
            access_token: required_text(response, "/access_token", "access_token")?,
            expires_in: response.get("expires_in").and_then(Value::as_i64),
        })
    }

    /// When the token expires, counted from `now`.
    pub fn expires_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expires_in
            .and_then(|seconds| now.checked_add_signed(Duration::try_seconds(seconds)?))
    }
}

/// The professional account behind an Instagram User token (`GET /me`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstagramProfile {
    /// The Instagram professional account id: webhooks' `entry[].id`, the sender of sends.
    pub user_id: String,
    /// The `@` handle, without `@`.
    pub username: Option<String>,
    /// The profile's display name.
    pub name: Option<String>,
}

/// `{"access_token","user_id","permissions"}` or the newer `{"data":[{…}]}`.
fn code_token(response: &Value) -> Result<InstagramCodeToken, GraphError> {
    let token = response.pointer("/data/0").unwrap_or(response);
    let permissions = match token.get("permissions") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(list)) => list
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Ok(InstagramCodeToken {
        access_token: required_text(token, "/access_token", "access_token")?,
        user_id: optional_text(token, "/user_id"),
        permissions,
    })
}

impl GraphClient {
    /// POST `{oauth base}/oauth/access_token`, form-encoded `client_id`, `client_secret`,
    /// `grant_type=authorization_code`, `redirect_uri`, `code`: the Instagram Login code
    /// exchange. Call it on a client made for `https://api.instagram.com`.
    pub async fn instagram_code_token(
        &self,
        app_id: &str,
        app_secret: &str,
        redirect_uri: &str,
        code: &str,
    ) -> Result<InstagramCodeToken, GraphError> {
        let url = self.url(&["oauth", "access_token"], &[])?;
        let form = [
            ("client_id", app_id),
            ("client_secret", app_secret),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
            ("code", code),
        ];
        let response = self
            .execute(self.http.request(Method::POST, url).form(&form))
            .await?;
        code_token(&response)
    }

    /// GET `{base}/access_token?grant_type=ig_exchange_token&client_secret&access_token`: trades
    /// a short-lived Instagram User token for a long-lived one.
    pub async fn instagram_long_lived_token(
        &self,
        app_secret: &str,
        short_lived_token: &str,
    ) -> Result<LongLivedToken, GraphError> {
        let response = self
            .token_exchange(
                &["access_token"],
                &[
                    ("grant_type", "ig_exchange_token"),
                    ("client_secret", app_secret),
                    ("access_token", short_lived_token),
                ],
            )
            .await?;
        LongLivedToken::from_answer(&response)
    }

    /// GET `{base}/me?fields=user_id,username,name,profile_picture_url` with the token. The
    /// account id is `user_id`, else `id`.
    pub async fn instagram_profile(&self, token: &str) -> Result<InstagramProfile, GraphError> {
        let url = self.url(&["me"], &[("fields", PROFILE_FIELDS)])?;
        let response = self.call(Method::GET, url, Some(token), None).await?;
        let user_id = optional_text(&response, "/user_id")
            .map_or_else(|| required_text(&response, "/id", "the account id"), Ok)?;
        Ok(InstagramProfile {
            user_id,
            username: optional_text(&response, "/username"),
            name: optional_text(&response, "/name"),
        })
    }

    /// GET `{base}/refresh_access_token?grant_type=ig_refresh_token&access_token`: a fresh
    /// long-lived token (about 60 days) for one that is at least a day old and not expired.
    pub async fn instagram_refresh_token(&self, token: &str) -> Result<LongLivedToken, GraphError> {
        let response = self
            .token_exchange(
                &["refresh_access_token"],
                &[("grant_type", "ig_refresh_token"), ("access_token", token)],
            )
            .await?;
        LongLivedToken::from_answer(&response)
    }

    /// POST `{base}/me/subscribed_apps?subscribed_fields=…` ([`INSTAGRAM_SUBSCRIBED_FIELDS`])
    /// with the token: the app receives the account's messaging webhooks.
    pub async fn instagram_subscribe(&self, token: &str) -> Result<(), GraphError> {
        let url = self.url(
            &["me", "subscribed_apps"],
            &[("subscribed_fields", INSTAGRAM_SUBSCRIBED_FIELDS)],
        )?;
        let response = self.call(Method::POST, url, Some(token), None).await?;
        confirmed(&response, "the Instagram webhook subscription")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_code_exchange_shapes_are_read() {
        let flat = json!({"access_token": "IGAA-short", "user_id": 26000000000000001_u64,
                          "permissions": "instagram_business_basic,instagram_business_manage_messages"});
        let nested = json!({"data": [{"access_token": "IGAA-short", "user_id": "26000000000000001",
                                      "permissions": ["instagram_business_basic", "instagram_business_manage_messages"]}]});
        for answer in [flat, nested] {
            let token = code_token(&answer).unwrap();
            assert_eq!(token.access_token, "IGAA-short");
            assert_eq!(token.user_id.as_deref(), Some("26000000000000001"));
            assert_eq!(
                token.permissions,
                [
                    "instagram_business_basic",
                    "instagram_business_manage_messages"
                ]
            );
        }
        assert!(code_token(&json!({"data": []})).is_err());
        assert!(code_token(&json!({"user_id": "1"})).is_err());
    }

    #[test]
    fn expiry_is_counted_from_now() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let token = LongLivedToken {
            access_token: "t".into(),
            expires_in: Some(86_400),
        };
        assert_eq!(
            token.expires_at(now).unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        let unknown = LongLivedToken {
            expires_in: None,
            ..token
        };
        assert_eq!(unknown.expires_at(now), None);
    }
}
