//! A failed Graph API call ([`GraphError`]) and the reading of error answers into one: Meta's `{"error":{…}}` bodies,
//! api.instagram.com's flat `{"error_type","code","error_message"}` ones, anything else cut short,
//! and `Retry-After`.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;

/// A failed Graph API call.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with an error status. `code` is Meta's `error.code` (0 when the body was not
    /// Meta's error JSON, e.g. a proxy's HTML page); `message` is `error.message`, else
    /// `error_user_title` / `error_user_msg`, else the start of the body; `retry_after` is the
    /// `Retry-After` header in seconds when sent.
    #[error("graph error {status}: ({code}) {message}")]
    Api {
        status: u16,
        code: i64,
        message: String,
        retry_after: Option<u64>,
    },
    /// Network, timeout, or an unreadable body.
    #[error("graph request failed: {0}")]
    Transport(String),
}

impl GraphError {
    /// Whether trying the same request again later may succeed: throttling (HTTP 429, codes 4,
    /// 80007, 130429), Meta-side failures (HTTP 5xx, codes 131000, 131016) and transport errors.
    /// Every other 4xx (bad parameters, undeliverable, outside the 24 h window, expired token…)
    /// is permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            GraphError::Transport(_) => true,
            GraphError::Api { status, code, .. } => {
                *status == 429
                    || *status >= 500
                    || matches!(code, 4 | 80007 | 130429 | 131000 | 131016)
            }
        }
    }

    /// Meta's `error.code`, when Meta answered.
    pub fn code(&self) -> Option<i64> {
        match self {
            GraphError::Api { code, .. } => Some(*code),
            GraphError::Transport(_) => None,
        }
    }

    /// The `Retry-After` seconds Meta sent, if any.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            GraphError::Api { retry_after, .. } => *retry_after,
            GraphError::Transport(_) => None,
        }
    }
}

impl From<reqwest::Error> for GraphError {
    fn from(error: reqwest::Error) -> Self {
        // The URL may carry a client secret or an OAuth code in its query: never keep it.
        GraphError::Transport(error.without_url().to_string())
    }
}
/// Error bodies longer than this are cut when used as a message.
const MAX_ERROR_TEXT: usize = 300;

/// `Retry-After` as whole seconds (the HTTP-date form is ignored).
pub(crate) fn retry_after_seconds(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// [`GraphError::Api`] from an error answer, reading Meta's `{"error":{…}}` body (or Instagram
/// OAuth's flat one) when present.
pub(crate) fn api_error(status: u16, body: &[u8], retry_after: Option<u64>) -> GraphError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    // api.instagram.com answers `{"error_type","code","error_message"}` at the top level.
    let error = parsed
        .as_ref()
        .and_then(|v| v.get("error").or_else(|| v.get("error_message").map(|_| v)));
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let code = error
        .and_then(|e| e.get("code"))
        .and_then(|c| c.as_i64().or_else(|| c.as_str()?.parse().ok()))
        .unwrap_or(0);
    let mut message = text("message")
        .or_else(|| text("error_message"))
        .or_else(|| text("error_user_title"))
        .or_else(|| text("error_user_msg"))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let body = String::from_utf8_lossy(body);
            let body = body.trim();
            if body.is_empty() {
                "empty error body".to_owned()
            } else {
                truncate(body, MAX_ERROR_TEXT)
            }
        });
    if let Some(details) = error
        .and_then(|e| e.pointer("/error_data/details"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|d| !d.is_empty() && !message.contains(*d))
    {
        message = format!("{message}: {}", truncate(details, MAX_ERROR_TEXT));
    }
    GraphError::Api {
        status,
        code,
        message,
        retry_after,
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_metas_and_instagrams_error_bodies() {
        let meta = br#"{"error":{"message":"(#100) Bad","type":"OAuthException","code":100}}"#;
        let instagram =
            br#"{"error_type":"OAuthException","code":400,"error_message":"Matching code was not found"}"#;
        let message = |error: GraphError| match error {
            GraphError::Api { code, message, .. } => (code, message),
            GraphError::Transport(other) => panic!("{other}"),
        };
        assert_eq!(
            message(api_error(400, meta, None)),
            (100, "(#100) Bad".into())
        );
        assert_eq!(
            message(api_error(400, instagram, None)),
            (400, "Matching code was not found".into())
        );
        let html = format!("<html>{}</html>", "x".repeat(400));
        let (code, text) = message(api_error(502, html.as_bytes(), Some(3)));
        assert_eq!(code, 0);
        assert_eq!(
            text.chars().count(),
            MAX_ERROR_TEXT + 1,
            "cut, with an ellipsis"
        );
    }

    #[test]
    fn retryable_classification() {
        let api = |status, code| GraphError::Api {
            status,
            code,
            message: String::new(),
            retry_after: None,
        };
        for (status, code) in [
            (400, 4),
            (400, 80007),
            (429, 130429),
            (500, 131000),
            (503, 131016),
            (500, 0),
            (429, 0),
            (400, 131016),
        ] {
            assert!(api(status, code).is_retryable(), "{status} {code}");
        }
        for (status, code) in [
            (400, 131026),
            (400, 131047),
            (400, 132000),
            (401, 190),
            (400, 131008),
            (404, 0),
        ] {
            assert!(!api(status, code).is_retryable(), "{status} {code}");
        }
        assert!(GraphError::Transport("timeout".into()).is_retryable());
    }
}
