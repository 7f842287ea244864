//! Facebook Login through the Graph API: the OAuth code and long-lived user-token exchanges, and
//! the reading of Graph answers every Meta channel's calls share (`required_text`,
//! `optional_text`, `confirmed`). The Messenger Page setup built on it is
//! `channels::messenger::page`.
//!
//! Like the rest of [`GraphClient`], nothing here puts a token, secret or code into an error or
//! a log line: they travel in the query or the `Authorization` header only.

use serde_json::Value;

use super::{GraphClient, GraphError};

/// The non-empty string at `pointer` of a Graph answer, else a transport error naming `what`.
/// Ids Meta sends as JSON numbers are accepted as their decimal text.
pub(crate) fn required_text(
    response: &Value,
    pointer: &str,
    what: &str,
) -> Result<String, GraphError> {
    optional_text(response, pointer)
        .ok_or_else(|| GraphError::Transport(format!("Graph API answer without {what}")))
}

/// The non-empty string (or integer, as text) at `pointer`, if any.
pub(crate) fn optional_text(response: &Value, pointer: &str) -> Option<String> {
    match response.pointer(pointer)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) if number.is_u64() => Some(number.to_string()),
        _ => None,
    }
}

/// `Ok` when a Graph answer is `{"success": true}`, or `{"result": "success"}` (what the
/// Messenger Profile API answers).
pub(crate) fn confirmed(response: &Value, what: &str) -> Result<(), GraphError> {
    if response.get("success").and_then(Value::as_bool) == Some(true)
        || response.get("result").and_then(Value::as_str) == Some("success")
    {
        Ok(())
    } else {
        Err(GraphError::Transport(format!(
            "Graph API did not confirm {what}"
        )))
    }
}

impl GraphClient {
    /// GET `{base}/oauth/access_token?client_id&client_secret&redirect_uri&code`: the Facebook
    /// Login code exchange; returns the short-lived user access token.
    pub async fn login_code_token(
        &self,
        app_id: &str,
        app_secret: &str,
        redirect_uri: &str,
        code: &str,
    ) -> Result<String, GraphError> {
        self.user_token(&[
            ("client_id", app_id),
            ("client_secret", app_secret),
            ("redirect_uri", redirect_uri),
            ("code", code),
        ])
        .await
    }

    /// GET `{base}/oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret&
    /// fb_exchange_token`: trades a short-lived user token for a long-lived one (about 60 days).
    pub async fn long_lived_user_token(
        &self,
        app_id: &str,
        app_secret: &str,
        short_lived_token: &str,
    ) -> Result<String, GraphError> {
        self.user_token(&[
            ("grant_type", "fb_exchange_token"),
            ("client_id", app_id),
            ("client_secret", app_secret),
            ("fb_exchange_token", short_lived_token),
        ])
        .await
    }

    /// GET `{base}/oauth/access_token?{query}`: the user access token of the answer.
    async fn user_token(&self, query: &[(&str, &str)]) -> Result<String, GraphError> {
        let response = self
            .token_exchange(&["oauth", "access_token"], query)
            .await?;
        required_text(&response, "/access_token", "access_token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_accept_strings_and_numeric_ids() {
        let answer = json!({"id": 17841400000000001_u64, "name": " Shop ", "empty": "", "f": 1.5});
        assert_eq!(
            optional_text(&answer, "/id").as_deref(),
            Some("17841400000000001")
        );
        assert_eq!(optional_text(&answer, "/name").as_deref(), Some("Shop"));
        assert_eq!(optional_text(&answer, "/empty"), None);
        assert_eq!(optional_text(&answer, "/f"), None);
        assert!(required_text(&answer, "/missing", "x").is_err());
        assert!(confirmed(&json!({"success": true}), "x").is_ok());
        assert!(confirmed(&json!({"result": "success"}), "x").is_ok());
        assert!(confirmed(&json!({"success": false}), "x").is_err());
        assert!(confirmed(&Value::Null, "x").is_err());
    }
}
